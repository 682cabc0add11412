import { describe, expect, it } from "@effect/vitest"
import { Log } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as keys from "../src/internal/keys.ts"
import * as scripts from "../src/internal/logScripts.ts"
import * as RedisLog from "../src/RedisLog.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"
import { connect } from "./support.ts"

const text = (frame: Uint8Array) => new TextDecoder().decode(frame)
const entry = (data: string, id?: string): Log.NewEntry => ({ fields: `data: ${data}\n\n`, id })

/** A node: its own connection and store. */
const node = (server: RedisServer.RedisServer, options: RedisLog.Options = {}) =>
  Effect.gen(function*() {
    const redis = yield* connect(server)
    const logs = yield* RedisLog.make({ address: server.url, ...options }).pipe(
      Effect.provideService(Redis.Redis, redis)
    )
    return { redis, logs }
  })

/** Every change of a log, as lines: `A 3 data: x` (seq, frame) / `M 2` / `E ep 0`. */
const watch = (log: Log.Log): Effect.Effect<Queue.Queue<string>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const q = yield* Queue.unbounded<string>()
    const stop = log.listen((change) => {
      if (change._tag === "Appended") {
        change.frames.forEach((f, i) => Queue.offerUnsafe(q, `A ${change.firstSeq + i} ${text(f)}`))
      } else if (change._tag === "Missed") Queue.offerUnsafe(q, `M ${change.afterSeq}`)
      else Queue.offerUnsafe(q, `E ${change.seq}`)
    })
    yield* Effect.addFinalizer(() => Effect.sync(stop))
    return q
  })

const takeN = (q: Queue.Queue<string>, n: number) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    while (out.length < n) out.push(yield* Queue.take(q))
    return out
  }).pipe(Effect.timeout("10 seconds"))

const fast = { positionCheck: "50 millis", ping: "100 millis" } as const

describe("RedisLog on a real redis-server", () => {
  it.live("a burst appended on one node reaches another node in order, with log ids", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const onA = yield* a.logs.open("prices")
      const onB = yield* b.logs.open("prices")
      expect(onB.position().seq).toBe(0)
      const seen = yield* watch(onB)
      const recorded = yield* onA.append([entry("1"), entry("2"), entry("3", "mine")])
      const epoch = onA.position().epoch
      expect(epoch).toBe(onB.position().epoch)
      expect(recorded).toEqual([{ seq: 1, id: `${epoch}-1` }, { seq: 2, id: `${epoch}-2` }, { seq: 3, id: "mine" }])
      expect(yield* takeN(seen, 3)).toEqual([
        `A 1 id: ${epoch}-1\ndata: 1\n\n`,
        `A 2 id: ${epoch}-2\ndata: 2\n\n`,
        "A 3 id: mine\ndata: 3\n\n"
      ])
      expect(onB.position()).toEqual({ epoch, seq: 3 })
    }).pipe(Effect.scoped))

  it.live("concurrent appends on two nodes: one order, seen the same by both", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const onA = yield* a.logs.open("t")
      const onB = yield* b.logs.open("t")
      const seenA = yield* watch(onA)
      const seenB = yield* watch(onB)
      const publish = (log: Log.Log, tag: string) =>
        Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => log.append([entry(`${tag}${i}`)]), {
          concurrency: 20
        })
      yield* Effect.all([publish(onA, "a"), publish(onB, "b")], { concurrency: 2 })
      const onAll = yield* takeN(seenA, 400)
      expect(yield* takeN(seenB, 400)).toEqual(onAll)
      expect(onAll.map((l) => Number(l.split(" ")[1]))).toEqual(Array.from({ length: 400 }, (_, i) => i + 1))
    }).pipe(Effect.scoped))

  it.live("a jump is filled from the stream before anything newer", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, { positionCheck: false })
      const log = yield* a.logs.open("t")
      const seen = yield* watch(log)
      // Two entries recorded without a message to the nodes (as if Pub/Sub lost it).
      const b = { maxEvents: 1000, maxBytes: 1_048_576, maxAgeMillis: 3_600_000, ttlMillis: 0 }
      yield* a.redis.eval(scripts.append)(keys.topic("sluice", "t"), "elsewhere", "t", "x", Date.now(), b, [
        { id: undefined, fields: "data: lost1\n\n" },
        { id: undefined, fields: "data: lost2\n\n" }
      ])
      yield* log.append([entry("3")])
      const lines = yield* takeN(seen, 3)
      expect(lines.map((l) => l.replace(/id: \w+-/, "id: "))).toEqual([
        "A 1 id: 1\ndata: lost1\n\n",
        "A 2 id: 2\ndata: lost2\n\n",
        "A 3 id: 3\ndata: 3\n\n"
      ])
    }).pipe(Effect.scoped))

  it.live("a quiet miss is caught by the position check", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, fast)
      const log = yield* a.logs.open("t")
      const seen = yield* watch(log)
      const b = { maxEvents: 1000, maxBytes: 1_048_576, maxAgeMillis: 3_600_000, ttlMillis: 0 }
      yield* a.redis.eval(scripts.append)(keys.topic("sluice", "t"), "elsewhere", "t", "x", Date.now(), b, [
        { id: undefined, fields: "data: silent\n\n" }
      ])
      const [line] = yield* takeN(seen, 1)
      expect(line).toMatch(/^A 1 id: \w+-1\ndata: silent\n\n$/)
    }).pipe(Effect.scoped))

  it.live("a lost stream: EpochChanged, then the new epoch from 1", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, fast)
      const b = yield* node(server, fast)
      const onA = yield* a.logs.open("t")
      const onB = yield* b.logs.open("t")
      const seen = yield* watch(onB)
      yield* onA.append([entry("1")])
      const old = onA.position().epoch
      yield* takeN(seen, 1)
      yield* a.redis.send("FLUSHALL")
      const [r] = yield* onA.append([entry("new")])
      expect(r!.seq).toBe(1)
      const lines = yield* takeN(seen, 2)
      expect(lines[0]).toBe("E 0")
      // The record's new epoch is in the append's id; A's own tail learns it
      // from its Pub/Sub message, so A's position may still lag here.
      const epoch = r!.id.slice(0, r!.id.lastIndexOf("-"))
      expect(epoch).not.toBe(old)
      expect(lines[1]).toBe(`A 1 id: ${epoch}-1\ndata: new\n\n`)
      expect(onB.position().epoch).toBe(epoch)
    }).pipe(Effect.scoped))

  it.live("reads: after an id, after a position, the newest; not found: restarted, expired, unknown", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const log = yield* a.logs.open("t", { maxEvents: 3 })
      yield* log.append([entry("1"), entry("2"), entry("3", "own"), entry("4"), entry("5")])
      const { epoch } = log.position()
      const all = { maxEvents: 100, maxBytes: 1_000_000 }
      const ids = (r: Log.ReadResult) => r._tag === "Found" ? r.entries.map((e) => e.id) : r.reason
      expect(ids(yield* log.read(Log.afterId(`${epoch}-3`, all)))).toEqual([`${epoch}-4`, `${epoch}-5`])
      expect(ids(yield* log.read(Log.afterId("own", all)))).toEqual([`${epoch}-4`, `${epoch}-5`])
      expect(ids(yield* log.read(Log.afterSeq(epoch, 5, all)))).toEqual([])
      const newest = yield* log.read(Log.newest({ maxEvents: 2, maxBytes: 1_000_000 }))
      expect(ids(newest)).toEqual([`${epoch}-4`, `${epoch}-5`])
      expect(newest._tag === "Found" && newest.complete).toBe(false) // 3 is retained too
      const all3 = yield* log.read(Log.newest(all))
      expect(all3._tag === "Found" && [all3.entries.length, all3.complete]).toEqual([3, true])
      expect(ids(yield* log.read(Log.afterId(`${epoch}-1`, all)))).toBe("expired")
      expect(ids(yield* log.read(Log.afterId("zzz-1", all)))).toBe("restarted")
      expect(ids(yield* log.read(Log.afterId("nonsense", all)))).toBe("unknown")
      expect(ids(yield* log.read(Log.afterSeq(epoch, 9, all)))).toBe("unknown")
      const partial = yield* log.read(Log.afterSeq(epoch, 2, { maxEvents: 2, maxBytes: 1_000_000 }))
      expect(partial._tag === "Found" && [partial.complete, partial.entries.length]).toEqual([false, 2])
      const found = yield* log.read(Log.afterSeq(epoch, 3, all))
      expect(found._tag === "Found" && text(found.entries[0]!.frame)).toBe(`id: ${epoch}-4\ndata: 4\n\n`)
    }).pipe(Effect.scoped))

  it.live("Redis gone: appends fail with a LogError naming the address; back: appends work again", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, { timeout: "1 second" })
      const log = yield* a.logs.open("t")
      yield* server.kill
      const failed = yield* Effect.flip(log.append([entry("x")]))
      expect(failed._tag).toBe("LogError")
      expect(failed.message).toContain(server.url)
      yield* server.start
      const ok = yield* log.append([entry("y")]).pipe(
        Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
      )
      expect(ok[0]!.seq).toBe(1)
    }).pipe(Effect.scoped))
})
