import { describe, expect, it } from "@effect/vitest"
import { Effect, Latch, Metric } from "effect"
import { Connection, SseEvent } from "../src/index.ts"
import { seal } from "../src/internal/burst.ts"
import * as connection from "../src/internal/connection.ts"
import { LeakTracker, TestProducer, TestSink, TestTime } from "../src/testing.ts"
import { frameSink } from "./support/frames.ts"

const utf8 = new TextEncoder()
const frame = (i: number) => utf8.encode(`id: ${i}\ndata: ${i}\n\n`)
const frames = (ids: ReadonlyArray<number>) => ids.map((i) => `id: ${i}\ndata: ${i}\n\n`).join("")
const notice = (missed: number) => SseEvent.make({ event: "events_dropped", data: String(missed) })
const noticeText = (missed: number) => `event: events_dropped\ndata: ${missed}\n\n`

describe("Connection overflow, preamble and feeder hooks", () => {
  it.effect("sliding: a full mailbox drops its oldest frame; the notice goes where the gap is", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ hangAfter: 1 })
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({
          sink: sink.sink,
          capacity: 3,
          strategy: "sliding",
          dropNotice: notice,
          heartbeat: false,
          writeTimeout: false
        })
        expect(conn.offerUnsafe(frame(1))).toBe(true)
        yield* sink.awaitWrites(1) // 1 written
        for (let i = 2; i <= 7; i++) expect(conn.offerUnsafe(frame(i))).toBe(true)
        // [2, 3, 4] were full; 5, 6, 7 pushed out 2, 3, 4.
        expect(conn.stats()).toMatchObject({ dropped: 3 })
        expect(conn.size()).toBe(3)
        yield* conn.kill("test")
      })))
      expect(sink.text()).toBe(frames([1]))
      yield* tracker.assertNoLeaks()
    }))

  it.effect("sliding: after drops the writer writes the notice first, then the survivors", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({
          sink: sink.sink,
          capacity: 2,
          strategy: "sliding",
          dropNotice: notice
        })
        // Synchronous: the writer has not run, so the mailbox holds at most 2.
        for (let i = 1; i <= 5; i++) conn.offerUnsafe(frame(i))
        yield* sink.awaitWrites(1)
        conn.offerUnsafe(frame(6))
        yield* sink.awaitWrites(2)
        yield* conn.close("done")
        return yield* conn.outcome
      }))
      expect(sink.text()).toBe(noticeText(3) + frames([4, 5, 6]))
      expect(outcome).toMatchObject({ _tag: "Closed", dropped: 3, delivered: 4, discarded: 0 })
    }))

  it.effect("dropping: a full mailbox refuses new frames; the notice follows what was kept", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({
          sink: sink.sink,
          capacity: 2,
          strategy: "dropping",
          dropNotice: notice
        })
        const accepted = [1, 2, 3, 4].map((i) => conn.offerUnsafe(frame(i)))
        expect(accepted).toEqual([true, true, false, false])
        yield* sink.awaitWrites(1)
        conn.offerUnsafe(frame(5))
        yield* sink.awaitWrites(2)
        yield* conn.close("done")
        return yield* conn.outcome
      }))
      expect(sink.text()).toBe(frames([1, 2]) + noticeText(2) + frames([5]))
      expect(outcome).toMatchObject({ dropped: 2, delivered: 4 })
    }))

  it.effect("a waiting heartbeat never takes an event's room under sliding (and is never counted as a drop)", () =>
    Effect.gen(function*() {
      const hold = yield* Latch.make(false)
      const sink = frameSink({ hold })
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({
          sink: sink.sink,
          capacity: 2,
          strategy: "sliding",
          dropNotice: notice,
          heartbeat: "1 second",
          writeTimeout: false
        })
        conn.offerUnsafe(frame(1))
        yield* TestTime.settle() // event 1 is in the held write
        yield* TestTime.advance("1 second", "100 millis") // a heartbeat waits in the mailbox
        expect(conn.size()).toBe(0) // capacity counts events only
        conn.offerUnsafe(frame(2))
        conn.offerUnsafe(frame(3)) // fits: capacity 2, nothing dropped
        expect(conn.stats()).toMatchObject({ dropped: 0, heartbeats: 1 })
        yield* hold.open
        yield* sink.awaitEvents(3)
        yield* conn.close("done")
        return yield* conn.outcome
      }))
      // The heartbeat that was waiting is written too, where it was queued.
      expect(sink.text()).toBe(frames([1]) + ":\n\n" + frames([2, 3]))
      expect(outcome).toMatchObject({ delivered: 3, dropped: 0, discarded: 0, heartbeats: 1 })
    }))

  it.effect("offerBurstUnsafe: a burst is shared by the mailboxes and never changed; each copies before it changes", () =>
    Effect.gen(function*() {
      const holdA = yield* Latch.make(false)
      const holdB = yield* Latch.make(false)
      const sinkA = frameSink({ hold: holdA })
      const sinkB = frameSink({ hold: holdB })
      const burst = [frame(1), frame(2), frame(3)]
      const original = [...burst]
      yield* Effect.scoped(Effect.gen(function*() {
        const options = { strategy: "sliding", heartbeat: false, writeTimeout: false } as const
        // Fed connections (a hub's): only a feeder offers bursts.
        const a = yield* connection.makeFed({ ...options, capacity: 3, sink: sinkA.sink }, { start: () => [] })
        const b = yield* connection.makeFed({ ...options, capacity: 4, sink: sinkB.sink }, { start: () => [] })
        a.offerUnsafe(frame(0))
        b.offerUnsafe(frame(0))
        yield* TestTime.settle() // both writers are in a held write: the mailboxes are empty
        expect(a.offerBurstUnsafe(seal(burst), 0)).toBe(3)
        expect(b.offerBurstUnsafe(seal(burst), 0)).toBe(3)
        // a (full): a drop; b (room for one more): an append. Neither may
        // show through the other or in the burst.
        a.offerUnsafe(frame(4))
        expect(b.offerManyUnsafe([frame(5)], 0)).toBe(1)
        expect(burst).toEqual(original)
        expect(a.stats().dropped).toBe(1)
        yield* holdA.open
        yield* holdB.open
        yield* sinkA.awaitId("4")
        yield* sinkB.awaitId("5")
        yield* Effect.all([a.close("done"), b.close("done")])
      }))
      expect(burst).toEqual(original)
      expect(sinkA.text()).toBe(frames([0, 2, 3, 4]))
      expect(sinkB.text()).toBe(frames([0, 1, 2, 3, 5]))
    }))

  it.effect("drops are counted without a notice, and in the metric by reason", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* Connection.make({ sink: sink.sink, capacity: 1, strategy: "dropping" })
        const b = yield* Connection.make({ sink: sink.sink, capacity: 1, strategy: "sliding" })
        for (let i = 1; i <= 4; i++) {
          a.offerUnsafe(frame(i))
          b.offerUnsafe(frame(i))
        }
        expect(a.stats().dropped).toBe(3)
        expect(b.stats().dropped).toBe(3)
        yield* sink.awaitWrites(2)
      }))
      // Without a notice only the survivors are written: 1 (newest dropped) and 4 (oldest dropped).
      expect(sink.text().split("\n\n").filter((s) => s !== "").toSorted()).toEqual(["id: 1\ndata: 1", "id: 4\ndata: 4"])
      const snapshot = yield* Metric.snapshot
      const dropped = (reason: string) =>
        snapshot.find((m) => m.id === "sluice_events_dropped_total" && m.attributes?.["reason"] === reason)?.state
      expect(dropped("dropping")).toMatchObject({ count: 3 })
      expect(dropped("sliding")).toMatchObject({ count: 3 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("a producer never waits under a dropping overflow", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ hangAfter: 0 })
      const producer = TestProducer.aggressive(100)
      const outcome = yield* TestTime.runToEnd(
        Connection.run({
          producer: producer.producer,
          sink: sink.sink,
          capacity: 4,
          strategy: "dropping",
          writeTimeout: "1 second"
        }),
        { step: "100 millis" }
      )
      expect(producer.state()).toBe("completed")
      expect(producer.offered()).toBe(100)
      // The producer ran all 100 sends before the writer's first turn: 4 were
      // accepted (and then stuck in the hanging write), 96 were dropped.
      expect(outcome).toMatchObject({ _tag: "ClientGone", dropped: 96, discarded: 4, delivered: 0 })
    }))

  it.effect("preamble: written before anything offered, in batches of at most `capacity` frames", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({
          sink: sink.sink,
          capacity: 2,
          preamble: [1, 2, 3, 4, 5].map(frame)
        })
        expect(conn.offerUnsafe(frame(6))).toBe(true)
        expect(conn.offerUnsafe(frame(7))).toBe(true)
        yield* conn.close("done")
        expect(yield* conn.outcome).toMatchObject({ delivered: 7, writes: 4 })
      }))
      expect(sink.text()).toBe(frames([1, 2, 3, 4, 5, 6, 7]))
      expect(sink.chunks().map((c) => c.byteLength)).toEqual([2, 2, 1, 2].map((n) => n * frame(1).byteLength))
    }))

  it.effect("preamble: frames and encoded frames mix, in order; an invalid frame is a defect of make naming it", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({
          sink: sink.sink,
          preamble: [SseEvent.retry(2000), frame(1), SseEvent.make({ id: "2", data: "2" })]
        })
        yield* conn.close("done")
        expect(yield* conn.outcome).toMatchObject({ delivered: 3 })
      }))
      expect(sink.text()).toBe(`retry: 2000\n\n${frames([1, 2])}`)
      const invalid = yield* Effect.exit(Effect.scoped(Connection.make({
        sink: sink.sink,
        preamble: [frame(1), SseEvent.make({ event: "a\nb", data: "x" })]
      })))
      expect(invalid._tag).toBe("Failure")
      expect(String(invalid)).toContain("Connection.make: invalid preamble[1]")
    }))

  it.effect("a feeder's start: called once with the live handle before the fibers start", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const tracker = LeakTracker.make()
      let calls = 0
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const conn = yield* connection.makeFed({ sink: sink.sink }, {
          start: (handle) => {
            calls++
            expect(tracker.byLabel()).toEqual({})
            // A feeder registered here may offer at once; those frames come after the preamble.
            expect(handle.offerUnsafe(frame(3))).toBe(true)
            return [frame(1), frame(2)]
          }
        })
        yield* sink.awaitWrites(2)
        yield* conn.close("done")
      })))
      expect(calls).toBe(1)
      expect(sink.text()).toBe(frames([1, 2, 3]))
      yield* tracker.assertNoLeaks()
    }))

  it.effect("an unwritten preamble counts as discarded when the connection is killed", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ hangAfter: 0 })
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ sink: sink.sink, capacity: 2, preamble: [1, 2, 3, 4, 5].map(frame) })
        conn.offerUnsafe(frame(6))
        yield* sink.awaitFault
        expect(conn.killUnsafe("slow")).toBe(true)
        expect(conn.killUnsafe("again")).toBe(false)
        return yield* conn.outcome
      }))
      expect(outcome).toMatchObject({ _tag: "Closed", reason: "slow", delivered: 0, discarded: 6 })
    }))

  it.effect("a feeder's onEnd is called once with the outcome; accepting() turns false on close", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const ended: Array<Connection.Outcome> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* connection.makeFed({ sink: sink.sink }, { start: () => [], onEnd: (o) => ended.push(o) })
        expect(conn.accepting()).toBe(true)
        conn.offerUnsafe(frame(1))
        yield* conn.close("bye")
        expect(conn.accepting()).toBe(false)
        expect(conn.isOpen()).toBe(true) // still writing what was accepted
        const outcome = yield* conn.outcome
        expect(ended).toEqual([outcome])
        yield* conn.kill("late")
      }))
      expect(ended).toHaveLength(1)
      expect(ended[0]).toMatchObject({ _tag: "Closed", reason: "bye", delivered: 1 })
    }))

  it.effect("addObserver: called once, at the end, after the feeder's onEnd; at once when already ended", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const calls: Array<string> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* connection.makeFed({ sink: sink.sink }, {
          start: () => [],
          onEnd: (o) => calls.push(`feeder ${o._tag}`)
        })
        conn.addObserver((o) => calls.push(`first ${o._tag}`))
        const removed = conn.addObserver((o) => calls.push(`removed ${o._tag}`))
        removed()
        yield* conn.kill("bye")
        expect(calls).toEqual(["feeder Closed", "first Closed"])
        conn.addObserver((o) => calls.push(`late ${o._tag}`))
        expect(calls).toEqual(["feeder Closed", "first Closed", "late Closed"])
        yield* conn.kill("again")
      }))
      expect(calls).toHaveLength(3)
    }))
})
