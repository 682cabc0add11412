// Resumable streams across real processes (tests/redis/app.ts on one
// redis-server, Resumable on RedisResumable and RedisLog, lease 2 s):
// resume on another node, kill -9 the producer's node, stop from another
// node, the same start on every node at once.
import { describe, expect, it } from "@effect/vitest"
import { RedisServer } from "@sluice/redis/testing"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as AppProcess from "./AppProcess.ts"
import { post, readOnce, type Received } from "./support.ts"

const leaseMs = 2_000

const nodes = (url: string, names: ReadonlyArray<string>) =>
  Effect.all(names.map((name) => AppProcess.start(name, url, { LEASE_MS: String(leaseMs) })), {
    concurrency: "unbounded"
  })

const start = (app: AppProcess.AppProcess, id: string, count: number, pauseMs: number) =>
  post(`${app.url}/streams/${id}`, { count, pauseMs })

const streamUrl = (app: AppProcess.AppProcess, id: string) => `${app.url}/streams/${id}/stream`

const tokensOf = (events: ReadonlyArray<Received>) => events.filter((e) => e.event === "token")
const closeReason = (events: ReadonlyArray<Received>) => {
  const close = events.find((e) => e.event === "connection_close")
  return close === undefined ? undefined : JSON.parse(close.data).reason as string
}
const names = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `t${from + i}`)
const lines = (output: string, pattern: RegExp) => output.split("\n").filter((l) => pattern.test(l))

// A process's log line arrives through a pipe: waits (bounded) until `app` has logged one matching `pattern`.
const logged = (app: AppProcess.AppProcess, pattern: RegExp) =>
  Effect.sync(() => lines(app.output(), pattern)).pipe(
    Effect.filterOrFail((found) => found.length > 0),
    Effect.retry({ times: 250, schedule: Schedule.spaced("20 millis") })
  )

describe("resumable streams across processes on Redis", () => {
  it.live(
    "started on A, read in turns on B and A, 30 tokens at a time with Last-Event-ID: every token once, in order, then completed",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b] = yield* nodes(redis.url, ["a", "b"])
        expect((yield* start(a!, "hop", 300, 5)).status).toBe(201)
        const seen: Array<string> = []
        let lastId: string | undefined
        let hops = 0
        let last: ReadonlyArray<Received> = []
        // Bounded: 300 tokens, 30 per hop.
        while (hops < 40 && closeReason(last) === undefined) {
          const app = hops % 2 === 0 ? b! : a!
          last = yield* Effect.scoped(Effect.gen(function*() {
            const reader = yield* readOnce(streamUrl(app, "hop"), {
              headers: lastId === undefined ? {} : { "last-event-id": lastId },
              leaveWhen: (events) => tokensOf(events).length >= 30
            })
            yield* reader.ended.pipe(Effect.timeout("20 seconds"))
            return reader.events()
          }))
          const tokens = tokensOf(last)
          seen.push(...tokens.map((e) => e.data))
          if (tokens.length > 0) lastId = tokens[tokens.length - 1]!.id
          hops++
        }
        expect(seen).toEqual(names(1, 300))
        expect(closeReason(last)).toBe("completed")
        expect(last.find((e) => e.event === "done")?.data).toBe(JSON.stringify({ reason: "completed" }))
        expect(hops).toBeGreaterThanOrEqual(10)
        console.log(`resume across nodes: 300 tokens read in ${hops} attaches, alternating B and A`)
        // A second tab without an id, on B: the whole answer.
        const whole = yield* readOnce(streamUrl(b!, "hop"))
        yield* whole.ended.pipe(Effect.timeout("20 seconds"))
        expect(tokensOf(whole.events()).map((e) => e.data)).toEqual(names(1, 300))
        expect(lines(a!.output(), /^started hop/)).toEqual(["started hop on a"])
        expect(lines(b!.output(), /^started hop/)).toEqual([])
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "kill -9 the producer's node: clients on B get producer_lost within the lease, with every token recorded before",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b] = yield* nodes(redis.url, ["a", "b"])
        expect((yield* start(a!, "lost", 100_000, 20)).status).toBe(201)
        const onB = yield* readOnce(streamUrl(b!, "lost"))
        yield* onB.until((events) => tokensOf(events).length >= 10).pipe(Effect.timeout("20 seconds"))
        const killedAt = Date.now()
        yield* a!.kill
        yield* onB.ended.pipe(Effect.timeout("20 seconds"))
        const waited = Date.now() - killedAt
        console.log(`kill -9 of the producer's node: producer_lost on B after ${waited} ms (lease ${leaseMs} ms)`)
        const events = onB.events()
        expect(closeReason(events)).toBe("producer_lost")
        expect(events.find((e) => e.event === "done")?.data).toBe(JSON.stringify({ reason: "producer_lost" }))
        expect(waited).toBeLessThan(leaseMs)
        const tokens = tokensOf(events).map((e) => e.data)
        expect(tokens).toEqual(names(1, tokens.length))
        // A client that comes later, on B: the whole record, then the same end, at once.
        const late = yield* readOnce(streamUrl(b!, "lost"))
        yield* late.ended.pipe(Effect.timeout("20 seconds"))
        expect(tokensOf(late.events()).map((e) => e.data)).toEqual(tokens)
        expect(closeReason(late.events())).toBe("producer_lost")
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "DELETE on B stops the producer running on A: its finalizer runs once, clients on A and B get stopped",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b] = yield* nodes(redis.url, ["a", "b"])
        expect((yield* start(a!, "halt", 100_000, 20)).status).toBe(201)
        const onA = yield* readOnce(streamUrl(a!, "halt"))
        const onB = yield* readOnce(streamUrl(b!, "halt"))
        yield* Effect.all([onA, onB].map((c) => c.until((events) => tokensOf(events).length >= 5)))
          .pipe(Effect.timeout("20 seconds"))
        const stoppedAt = Date.now()
        const stop = yield* Effect.promise(() => fetch(`${b!.url}/streams/halt`, { method: "DELETE" }))
        expect(stop.status).toBe(204)
        yield* Effect.all([onA.ended, onB.ended]).pipe(Effect.timeout("20 seconds"))
        console.log(`stop from B: the stream on A ended after ${Date.now() - stoppedAt} ms`)
        for (const c of [onA, onB]) {
          expect(closeReason(c.events())).toBe("stopped")
          const tokens = tokensOf(c.events()).map((e) => e.data)
          expect(tokens).toEqual(names(1, tokens.length))
        }
        // Both saw the whole record up to the end marker.
        expect(tokensOf(onA.events()).length).toBe(tokensOf(onB.events()).length)
        expect(yield* logged(a!, /^finalized halt/)).toEqual(["finalized halt interrupted"])
        expect(lines(b!.output(), /^finalized halt/)).toEqual([])
        // A second stop: it has ended already.
        const again = yield* Effect.promise(() => fetch(`${a!.url}/streams/halt`, { method: "DELETE" }))
        expect(again.status).toBe(204)
        expect(lines(a!.output(), /^finalized halt/)).toHaveLength(1)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "the same start posted 15 times at once to three nodes: one producer, one 201, fourteen answers that it exists",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const apps = yield* nodes(redis.url, ["a", "b", "c"])
        const answers = yield* Effect.all(
          Array.from({ length: 15 }, (_, i) => start(apps[i % 3]!, "once", 20, 5)),
          { concurrency: "unbounded" }
        )
        expect(answers.filter((r) => r.status === 201)).toHaveLength(1)
        const existing = answers.filter((r) => r.status === 200)
        expect(existing).toHaveLength(14)
        for (const r of existing) expect(r.body).toMatchObject({ id: "once", existing: true })
        const reader = yield* readOnce(streamUrl(apps[2]!, "once"))
        yield* reader.ended.pipe(Effect.timeout("20 seconds"))
        expect(tokensOf(reader.events()).map((e) => e.data)).toEqual(names(1, 20))
        expect(closeReason(reader.events())).toBe("completed")
        const started = apps.flatMap((app) => lines(app.output(), /^started once/))
        expect(started).toHaveLength(1)
      }).pipe(Effect.scoped),
    120_000
  )
})
