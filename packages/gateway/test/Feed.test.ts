import { describe, expect, it } from "@effect/vitest"
import { TestSink } from "@sluice/core/testing"
import { Effect } from "effect"
import * as Feed from "../src/Feed.ts"

const ids = (text: string) => [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1])
const quiet = { heartbeat: false, writeTimeout: false } as const
// Lets the feed's once-per-turn hand-out and the writers run.
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))))

describe("Feed (in memory)", () => {
  it.live("one order across topics; an event on two subscribed topics arrives once", () =>
    Effect.gen(function*() {
      const feed = yield* Feed.makeMemory()
      const sink = yield* TestSink.make()
      yield* feed.subscribe({ ...quiet, sink: sink.sink, topics: ["a", "b"] })
      yield* feed.publish([
        { topics: ["a"], data: "1" },
        { topics: ["c"], data: "2" },
        { topics: ["b", "a"], data: "3" },
        { topics: ["b"], data: "4" }
      ])
      yield* settle
      expect(ids(sink.text())).toEqual(["1", "3", "4"])
    }))

  it.live("a batch with one invalid event publishes nothing", () =>
    Effect.gen(function*() {
      const feed = yield* Feed.makeMemory({ maxEventBytes: 100 })
      const refused = yield* Effect.flip(feed.publish([
        { topics: ["a"], data: "ok" },
        { topics: ["a"], data: "x".repeat(200) }
      ]))
      expect(refused._tag).toBe("PayloadTooLargeError")
      const invalid = yield* Effect.flip(feed.publish([{ topics: ["a"], data: "ok", event: "a\nb" }]))
      expect(invalid._tag).toBe("InvalidEventError")
      expect(feed.stats()).toMatchObject({ published: 0, history: { events: 0 } })
    }))

  it.live("resume: exact after a retained id, replay_gap (expired) before the record", () =>
    Effect.gen(function*() {
      const feed = yield* Feed.makeMemory({ history: { maxEvents: 2 }, epoch: "e1" })
      const published = yield* feed.publish([1, 2, 3, 4].map((n) => ({ topics: ["a"], data: String(n) })))
      expect(published.map((p) => p.id)).toEqual(["e1-1", "e1-2", "e1-3", "e1-4"])
      const exact = yield* TestSink.make()
      const resumed = yield* feed.subscribe({ ...quiet, sink: exact.sink, topics: ["a"], lastEventId: "e1-3" })
      expect(resumed.replay).toEqual({ _tag: "Resumed", lastEventId: "e1-3", replayed: 1 })
      const late = yield* TestSink.make()
      const gap = yield* feed.subscribe({ ...quiet, sink: late.sink, topics: ["a"], lastEventId: "e1-1" })
      expect(gap.replay).toMatchObject({ _tag: "Gap", reason: "expired", replayed: 2 })
      yield* settle
      expect(ids(exact.text())).toEqual(["4"])
      expect(late.text()).toContain("id: e1-2\nevent: replay_gap\n")
      expect(ids(late.text()).slice(1)).toEqual(["3", "4"])
    }))

  it.live("a subscriber whose mailbox overflows is disconnected (others keep everything)", () =>
    Effect.gen(function*() {
      // One hand-out per publish (no window), so that each settle delivers.
      const feed = yield* Feed.makeMemory({ coalesce: false })
      const slow = yield* TestSink.make({ hangAfter: 0 })
      const fast = yield* TestSink.make()
      const s = yield* feed.subscribe({ ...quiet, sink: slow.sink, topics: ["a"], capacity: 4 })
      yield* feed.subscribe({ ...quiet, sink: fast.sink, topics: ["a"], capacity: 64 })
      for (let i = 0; i < 10; i++) {
        yield* feed.publish([{ topics: ["a"], data: String(i) }])
        yield* settle
      }
      const outcome = yield* s.connection.outcome
      expect(outcome).toMatchObject({ _tag: "Closed", reason: "slow_consumer" })
      expect(ids(fast.text())).toHaveLength(10)
      expect(feed.stats().subscribers).toBe(1)
    }))

  it.live("coalescing: events published one per turn within the window go out together, in order, in one write", () =>
    Effect.gen(function*() {
      // A long window, so that the publishes below surely fall within it.
      const feed = yield* Feed.makeMemory({ coalesce: "500 millis" })
      const sink = yield* TestSink.make()
      yield* feed.subscribe({ ...quiet, sink: sink.sink, topics: ["a", "b"] })
      // After a quiet spell: at once.
      yield* feed.publish([{ topics: ["a"], data: "1" }])
      yield* sink.awaitWrites(1)
      // Within the window of that hand-out: held, joined by the next ones.
      for (const [topic, data] of [["a", "2"], ["c", "x"], ["b", "3"], ["a", "4"]] as const) {
        yield* feed.publish([{ topics: [topic], data }])
        yield* settle
      }
      yield* sink.awaitWrites(2)
      expect(sink.chunks()).toHaveLength(2)
      expect(ids(new TextDecoder().decode(sink.chunks()[1]))).toEqual(["2", "3", "4"])
    }))

  it.live("coalescing: subscribers of the same topics share the hand-out; one that came mid-window gets live only what followed its replay", () =>
    Effect.gen(function*() {
      const feed = yield* Feed.makeMemory({ coalesce: "500 millis", epoch: "e" })
      const first = yield* TestSink.make()
      yield* feed.subscribe({ ...quiet, sink: first.sink, topics: ["a"] })
      yield* feed.publish([{ topics: ["a"], data: "1" }])
      yield* first.awaitWrites(1)
      yield* feed.publish([{ topics: ["a"], data: "2" }])
      // Comes while "2" is held: "2" is in its replay, so it must not get it live too.
      const second = yield* TestSink.make()
      const sub = yield* feed.subscribe({ ...quiet, sink: second.sink, topics: ["a"], lastEventId: "e-1" })
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "e-1", replayed: 1 })
      yield* feed.publish([{ topics: ["a"], data: "3" }])
      yield* first.awaitWrites(2)
      while (ids(second.text()).length < 2) yield* second.awaitWrites(second.chunks().length + 1)
      expect(ids(first.text())).toEqual(["1", "2", "3"])
      expect(ids(second.text())).toEqual(["2", "3"])
    }))

  it.live("coalescing: a connection closed while events are held loses nothing: its resume gets them, once", () =>
    Effect.gen(function*() {
      const feed = yield* Feed.makeMemory({ coalesce: "500 millis" })
      const sink = yield* TestSink.make()
      const sub = yield* feed.subscribe({ ...quiet, sink: sink.sink, topics: ["a"] })
      yield* feed.publish([{ topics: ["a"], data: "1" }])
      yield* sink.awaitWrites(1)
      yield* feed.publish([{ topics: ["a"], data: "2" }])
      yield* feed.publish([{ topics: ["a"], data: "3" }])
      yield* sub.connection.close("bye")
      expect(yield* sub.connection.outcome).toMatchObject({ _tag: "Closed", reason: "bye" })
      expect(feed.stats().subscribers).toBe(0)
      const seen = [...sink.text().matchAll(/^id: (.*)$/gm)].map((m) => m[1]!)
      const again = yield* TestSink.make()
      const resumed = yield* feed.subscribe({ ...quiet, sink: again.sink, topics: ["a"], lastEventId: seen.at(-1) })
      expect(resumed.replay._tag).toBe("Resumed")
      yield* feed.publish([{ topics: ["a"], data: "4" }])
      while (ids(again.text()).length < 4 - ids(sink.text()).length) {
        yield* again.awaitWrites(again.chunks().length + 1)
      }
      expect([...ids(sink.text()), ...ids(again.text())]).toEqual(["1", "2", "3", "4"])
    }))

  it("options that cannot work are refused when the feed is made", () => {
    expect(() => Effect.runSync(Effect.scoped(Feed.makeMemory({ maxEventBytes: 0 })))).toThrow(/maxEventBytes/)
    expect(() => Effect.runSync(Effect.scoped(Feed.makeMemory({ epoch: "Not-Valid" })))).toThrow(/epoch/)
    expect(() => Effect.runSync(Effect.scoped(Feed.makeMemory({ coalesce: "soon" as never })))).toThrow(/coalesce/)
  })
})
