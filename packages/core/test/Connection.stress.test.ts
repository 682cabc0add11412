import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Connection } from "../src/index.ts"
import { LeakTracker, TestProducer, TestSink, TestTime } from "../src/testing.ts"
import { expectAccounted } from "./support/accounting.ts"

describe("Connection under stress", () => {
  it.effect("20 parallel connections, aggressive producers of 500, sinks failing after 1-3 writes", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const runs = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const failAfter = (i % 3) + 1
          const sink = yield* TestSink.make({ failAfter })
          const producer = TestProducer.aggressive(500)
          const outcome = yield* Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 8 })
          return { failAfter, sink, producer, outcome }
        }), { concurrency: "unbounded" }).pipe(tracker.track)

      for (const { failAfter, outcome, producer, sink } of runs) {
        expect(outcome.reason).toBe("client-gone")
        expect(outcome.writes).toBe(failAfter)
        expect(sink.chunks()).toHaveLength(failAfter)
        expect(sink.attempts()).toBe(failAfter + 1)
        // The producer was stopped long before it could offer all 500.
        expect(producer.state()).toBe("interrupted")
        expect(producer.offered()).toBeLessThan(500)
        expectAccounted(outcome, producer)
        // What was written is exactly the first `delivered` events, in order.
        expect(sink.text()).toBe(
          Array.from({ length: outcome.delivered }, (_, k) => `id: ${k + 1}\ndata: ${k + 1}\n\n`).join("")
        )
      }
      yield* tracker.assertNoLeaks()
    }))

  it.effect("5 independent connections of 200 events, all failing quickly, do not interfere", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const runs = yield* Effect.forEach([1, 2, 3, 4, 5], (failAfter) =>
        Effect.gen(function*() {
          const sink = yield* TestSink.make({ failAfter })
          const producer = TestProducer.aggressive(200)
          // capacity 1: one event per write, so each connection's count is exact
          const outcome = yield* Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 1 })
          return { failAfter, producer, outcome }
        }), { concurrency: "unbounded" }).pipe(tracker.track)

      expect(runs.map((r) => r.outcome.delivered)).toEqual([1, 2, 3, 4, 5])
      for (const { outcome, producer } of runs) {
        expect(outcome.reason).toBe("client-gone")
        expectAccounted(outcome, producer)
      }
      yield* tracker.assertNoLeaks()
    }))

  it.effect("bursts of 30, 10 bursts, 1 ms pauses, the sink failing after 50 writes mid-burst", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const sink = yield* TestSink.make({ failAfter: 50 })
      const producer = TestProducer.oscillating({ burst: 30, pauses: 10, pause: "1 millis" })
      const outcome = yield* TestTime.runToEnd(
        tracker.track(Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 1 })),
        { limit: "1 second" }
      )
      expect(outcome.reason).toBe("client-gone")
      expect(outcome.delivered).toBe(50)
      // Event 51 failed: it is in the middle of the second burst (31..60).
      expect(sink.text().endsWith("id: 50\ndata: 50\n\n")).toBe(true)
      expect(producer.offered()).toBeGreaterThan(50)
      expect(producer.offered()).toBeLessThan(60)
      expect(producer.state()).toBe("interrupted")
      expectAccounted(outcome, producer)
      yield* tracker.assertNoLeaks()
    }))
})
