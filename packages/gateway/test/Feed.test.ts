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
      const feed = yield* Feed.makeMemory()
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

  it("options that cannot work are refused when the feed is made", () => {
    expect(() => Effect.runSync(Effect.scoped(Feed.makeMemory({ maxEventBytes: 0 })))).toThrow(/maxEventBytes/)
    expect(() => Effect.runSync(Effect.scoped(Feed.makeMemory({ epoch: "Not-Valid" })))).toThrow(/epoch/)
  })
})
