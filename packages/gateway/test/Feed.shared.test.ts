// A feed over a shared Log (what REDIS_URL gives each gateway process),
// played in one process over in-memory logs: two feeds on one log act as
// two processes; a tail that loses a change, and a record that starts a new
// life, are scripted.
import { describe, expect, it } from "@effect/vitest"
import { Log } from "@sluice/core"
import { TestSink } from "@sluice/core/testing"
import { Effect } from "effect"
import * as Feed from "../src/Feed.ts"

const quiet = { heartbeat: false, writeTimeout: false } as const
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))))
const blocks = (text: string) => text.split("\n\n").filter((b) => b !== "")
const data = (text: string) => [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1])

/**
 * A log in front of in-memory ones whose tail a test can disturb: drop the
 * next `Appended` change (a lost Pub/Sub message), or move to a new record
 * (Redis restarted empty) and announce it.
 */
const scripted = (name: string) =>
  Effect.gen(function*() {
    let inner = yield* Log.makeMemory({ name, maxEvents: 1_000 })
    const listeners = new Set<(change: Log.Change) => void>()
    let drop = 0
    const forward = (change: Log.Change) => {
      if (change._tag === "Appended" && drop > 0) {
        drop--
        return
      }
      for (const l of listeners) l(change)
    }
    let unlisten = inner.listen(forward)
    const log: Log.Log = {
      [Log.TypeId]: Log.TypeId,
      name,
      position: () => inner.position(),
      append: (entries) => Effect.suspend(() => inner.append(entries)),
      read: (request) => Effect.suspend(() => inner.read(request)),
      listen: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      stats: () => inner.stats(),
      // A remote record: no plain calls.
      synchronous: undefined
    }
    return {
      log,
      dropNext: () => {
        drop++
      },
      restart: Effect.gen(function*() {
        unlisten()
        inner = yield* Log.makeMemory({ name, maxEvents: 1_000 })
        unlisten = inner.listen(forward)
        forward(Log.epochChanged(inner.position().epoch, 0))
      })
    }
  })

describe("Feed over a shared log", () => {
  it.live("two feeds on one log: ids from one sequence, a subscriber of one gets what the other published, once, without the topics line", () =>
    Effect.gen(function*() {
      const log = yield* Log.makeMemory({ name: "feed", maxEvents: 100 })
      const a = yield* Feed.makeLog(log)
      const b = yield* Feed.makeLog(log)
      const sink = yield* TestSink.make()
      yield* b.subscribe({ ...quiet, sink: sink.sink, topics: ["x", "y"] })
      const first = yield* a.publish([{ topics: ["x"], data: "1" }, { topics: ["z"], data: "2" }])
      const second = yield* b.publish([{ topics: ["y", "x"], data: "3", event: "tick" }])
      const epoch = log.position().epoch
      expect([...first, ...second].map((p) => p.id)).toEqual([`${epoch}-1`, `${epoch}-2`, `${epoch}-3`])
      yield* settle
      expect(blocks(sink.text())).toEqual([`id: ${epoch}-1\ndata: 1`, `id: ${epoch}-3\nevent: tick\ndata: 3`])
    }))

  it.live("resume on the other feed with one Last-Event-ID (also the publisher's own id); a bad batch appends nothing", () =>
    Effect.gen(function*() {
      const log = yield* Log.makeMemory({ name: "feed", maxEvents: 100 })
      const a = yield* Feed.makeLog(log)
      const b = yield* Feed.makeLog(log, { maxEventBytes: 200 })
      const published = yield* a.publish([
        { topics: ["x"], data: "1" },
        { topics: ["x"], data: "2", id: "order-7" },
        { topics: ["y"], data: "3" },
        { topics: ["x"], data: "4" }
      ])
      const resumed = yield* TestSink.make()
      const sub = yield* b.subscribe({
        ...quiet,
        sink: resumed.sink,
        topics: ["x", "y"],
        lastEventId: published[0]!.id
      })
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: published[0]!.id, replayed: 3 })
      const own = yield* TestSink.make()
      yield* b.subscribe({ ...quiet, sink: own.sink, topics: ["x"], lastEventId: "order-7" })
      yield* settle
      expect(data(resumed.text())).toEqual(["2", "3", "4"])
      expect(data(own.text())).toEqual(["4"])
      const refused = yield* Effect.flip(
        b.publish([{ topics: ["x"], data: "ok" }, { topics: ["x"], data: "x".repeat(300) }])
      )
      expect(refused._tag).toBe("PayloadTooLargeError")
      expect(log.position().seq).toBe(4)
    }))

  it.live("a lost change: the feed reads the hole from the record before anything newer (no gap, no duplicate)", () =>
    Effect.gen(function*() {
      const shared = yield* scripted("feed")
      const a = yield* Feed.makeLog(shared.log)
      const sink = yield* TestSink.make()
      yield* a.subscribe({ ...quiet, sink: sink.sink, topics: ["x"] })
      // Each publish in a run of its own: one change each on the tail.
      yield* a.publish([{ topics: ["x"], data: "1" }])
      yield* settle
      shared.dropNext()
      yield* a.publish([{ topics: ["x"], data: "2" }, { topics: ["x"], data: "3" }])
      yield* settle
      yield* a.publish([{ topics: ["x"], data: "4" }])
      // The hole is read by a fiber: wait for the last event.
      while (data(sink.text()).length < 4) yield* sink.awaitWrites(sink.chunks().length + 1)
      expect(data(sink.text())).toEqual(["1", "2", "3", "4"])
      expect(a.stats().history.events).toBe(4)
    }))

  it.live("a new life of the record: live subscribers get replay_gap (restarted), then the new record; old ids get restarted", () =>
    Effect.gen(function*() {
      const shared = yield* scripted("feed")
      const a = yield* Feed.makeLog(shared.log)
      const old = yield* a.publish([{ topics: ["x"], data: "before" }])
      const sink = yield* TestSink.make()
      yield* a.subscribe({ ...quiet, sink: sink.sink, topics: ["x"] })
      yield* shared.restart
      yield* a.publish([{ topics: ["x"], data: "after" }])
      while (data(sink.text()).length < 2) yield* sink.awaitWrites(sink.chunks().length + 1)
      const epoch = shared.log.position().epoch
      expect(blocks(sink.text())).toEqual([
        `id: ${epoch}-0\nevent: replay_gap\ndata: {"reason":"restarted"}`,
        `id: ${epoch}-1\ndata: after`
      ])
      const late = yield* TestSink.make()
      const sub = yield* a.subscribe({ ...quiet, sink: late.sink, topics: ["x"], lastEventId: old[0]!.id })
      expect(sub.replay).toMatchObject({ _tag: "Gap", reason: "restarted", replayed: 1 })
    }))
})
