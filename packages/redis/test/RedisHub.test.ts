import { describe, expect, it } from "@effect/vitest"
import { Hub, Log } from "@sluice/core"
import { TestSink } from "@sluice/core/testing"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import * as Schedule from "effect/Schedule"
import * as RedisLog from "../src/RedisLog.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"
import { connect } from "./support.ts"

const events = (text: string) =>
  text.split("\n\n").filter((b) => b.length > 0 && !b.startsWith(":")).map((b) => {
    const id = /^id: (.*)$/m.exec(b)?.[1]
    const type = /^event: (.*)$/m.exec(b)?.[1]
    const data = /^data: (.*)$/m.exec(b)?.[1] ?? ""
    return { id, type, data }
  })

/** A node: its own connection, store and hub for the topic. */
const node = (server: RedisServer.RedisServer, topic: string, options: RedisLog.HubOptions = {}) =>
  Effect.gen(function*() {
    const redis = yield* connect(server)
    const logs = yield* RedisLog.make({ address: server.url, positionCheck: "100 millis", ping: "200 millis" }).pipe(
      Effect.provideService(Redis.Redis, redis)
    )
    const hub = yield* RedisLog.hub(topic, options).pipe(Effect.provideService(Log.Store, logs))
    return { redis, hub }
  })

const subscriber = (hub: Hub.Hub, lastEventId?: string) =>
  Effect.gen(function*() {
    const sink = yield* TestSink.make()
    const subscription = yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false, lastEventId })
    const seen = () => events(sink.text())
    const until = (n: number) =>
      Effect.gen(function*() {
        while (seen().length < n) yield* sink.awaitWrites(sink.chunks().length + 1)
        return seen()
      }).pipe(Effect.timeout("10 seconds"))
    return { subscription, seen, until }
  })

describe("Hub over RedisLog (two nodes in one process, real redis-server)", () => {
  it.live("a publish on node A reaches subscribers on node B; ids resume on either node", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, "ticker")
      const b = yield* node(server, "ticker")
      const onB = yield* subscriber(b.hub)
      for (const n of [1, 2, 3]) yield* Hub.publish(a.hub, { event: "tick", data: String(n) })
      const got = yield* onB.until(3)
      expect(got.map((e) => e.data)).toEqual(["1", "2", "3"])
      const epoch = a.hub.epoch
      expect(got.map((e) => e.id)).toEqual([`${epoch}-1`, `${epoch}-2`, `${epoch}-3`])
      // A client that saw 1 (from node B) resumes on node A.
      const resumed = yield* subscriber(a.hub, `${epoch}-1`)
      expect(resumed.subscription.replay).toEqual({ _tag: "Resumed", lastEventId: `${epoch}-1`, replayed: 2 })
      yield* Hub.publish(b.hub, { event: "tick", data: "4" })
      expect((yield* resumed.until(3)).map((e) => e.data)).toEqual(["2", "3", "4"])
    }).pipe(Effect.scoped))

  it.live("a refused publish touches neither Redis nor any node", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, "t", { maxEventBytes: 100, allowedEvents: ["tick"] })
      const b = yield* node(server, "t")
      const onB = yield* subscriber(b.hub)
      const calls = () =>
        a.redis.send<string>("INFO", "commandstats").pipe(
          Effect.map((info) => Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0))
        )
      const before = yield* calls()
      const tooLarge = yield* Effect.flip(Hub.publish(a.hub, { event: "tick", data: "x".repeat(200) }))
      const notAllowed = yield* Effect.flip(Hub.publish(a.hub, { event: "other", data: "y" }))
      expect([tooLarge._tag, notAllowed._tag]).toEqual(["PayloadTooLargeError", "EventNotAllowedError"])
      expect(yield* calls()).toBe(before)
      expect(yield* a.redis.send("XLEN", "sluice:t:{t}:s")).toBe(0)
      // The next accepted event is the first anyone sees.
      yield* Hub.publish(a.hub, { event: "tick", data: "ok" })
      expect((yield* onB.until(1)).map((e) => e.data)).toEqual(["ok"])
      expect(onB.seen()[0]!.id).toBe(`${a.hub.epoch}-1`)
    }).pipe(Effect.scoped))

  it.live("Redis restarted empty: a resuming client gets replay_gap with the new epoch, then live events", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, "t")
      const b = yield* node(server, "t")
      yield* Hub.publish(a.hub, { data: "before" })
      const old = a.hub.epoch
      yield* server.restart
      // The first publish after the restart may find the connection still coming back.
      yield* Hub.publish(a.hub, { data: "after" }).pipe(
        Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
      )
      const resumed = yield* subscriber(b.hub, `${old}-1`).pipe(
        Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
      )
      expect(resumed.subscription.replay._tag).toBe("Gap")
      // Gap signals (two when node b had not yet seen the new epoch: the
      // replay's, then the node's own when it learned of the restart), the last
      // in the new epoch; then every event after it, once, in order.
      yield* Hub.publish(a.hub, { data: "live" })
      yield* resumed.until(1)
      while (!resumed.seen().some((e) => e.data === "live")) yield* resumed.until(resumed.seen().length + 1)
      const got = resumed.seen()
      const lastGap = got.findLastIndex((e) => e.type === "replay_gap")
      for (const gap of got.slice(0, lastGap + 1)) {
        expect(gap.type).toBe("replay_gap")
        expect(JSON.parse(gap.data)).toEqual({ reason: "restarted", lastEventId: `${old}-1` })
      }
      const [epoch, at] = got[lastGap]!.id!.split("-")
      expect(epoch).not.toBe(old)
      expect(got.slice(lastGap + 1)).toEqual(
        [
          { id: `${epoch}-1`, type: undefined, data: "after" },
          { id: `${epoch}-2`, type: undefined, data: "live" }
        ].slice(Number(at))
      )
    }).pipe(Effect.scoped))
})
