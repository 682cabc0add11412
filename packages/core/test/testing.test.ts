import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Queue, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { Connection } from "../src/index.ts"
import { FiberLabel, LeakTracker, SeededScheduler, TestProducer, TestSink, TestTime } from "../src/testing.ts"
import { expectAccounted } from "./support/accounting.ts"

const bytes = (s: string) => new TextEncoder().encode(s)

describe("TestSink", () => {
  it.effect("records writes and fails after N", () =>
    Effect.gen(function*() {
      const t = yield* TestSink.make({ failAfter: 2 })
      yield* t.sink(bytes("a"))
      yield* t.sink(bytes("b"))
      const err = yield* Effect.flip(t.sink(bytes("c")))
      expect(err).toMatchObject({ _tag: "WriteError", reason: "closed" })
      expect(t.text()).toBe("ab")
      expect(t.attempts()).toBe(3)
    }))

  it.effect("hangs after N writes", () =>
    Effect.gen(function*() {
      const t = yield* TestSink.make({ hangAfter: 1 })
      yield* t.sink(bytes("a"))
      const f = yield* Effect.forkChild(t.sink(bytes("b")))
      yield* t.awaitFault
      yield* TestTime.advance("1 hour", "1 minute")
      expect(f.pollUnsafe()).toBeUndefined()
      yield* Fiber.interrupt(f)
    }))

  it.effect("delays each write on the test clock; awaitWrites waits for the writes themselves", () =>
    Effect.gen(function*() {
      const t = yield* TestSink.make({ delay: "1 second" })
      const f = yield* Effect.forkChild(Effect.andThen(t.sink(bytes("a")), t.sink(bytes("b"))))
      const waiter = yield* Effect.forkChild(t.awaitWrites(2))
      yield* TestTime.settle()
      yield* TestClock.adjust("1 second")
      expect(t.text()).toBe("a")
      expect(waiter.pollUnsafe()).toBeUndefined()
      yield* TestTime.settle()
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(waiter)
      yield* Fiber.join(f)
      expect(t.text()).toBe("ab")
    }))
})

describe("LeakTracker", () => {
  it.effect("names what is still alive, and passes once it has ended", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const sink = yield* TestSink.make({ hangAfter: 0 })
      // A connection whose owning fiber is left running: its fibers are alive.
      const owner = yield* Effect.forkChild(tracker.track(
        Effect.scoped(Effect.andThen(Connection.make({ sink: sink.sink, id: "leaky" }), Effect.never))
      ))
      yield* TestTime.settle()
      const err = yield* Effect.flip(tracker.assertNoLeaks({ yields: 10 }))
      expect(err._tag).toBe("LeakError")
      expect(err.byLabel["sluice/connection/leaky/writer"]).toBe(1)
      // Its heartbeat and write deadline are on the clock's shared ticker
      // (TestClock may add a warning fiber under the ticker's sleep).
      expect(err.byLabel["sluice/ticker"]).toBeGreaterThanOrEqual(1)
      expect(err.message).toContain("sluice/connection/leaky/writer x1")
      yield* Fiber.interrupt(owner)
      yield* tracker.assertNoLeaks()
      expect(tracker.started()).toBeGreaterThanOrEqual(2)
    }))

  it.effect("the report names each fiber, what it is blocked in and, on request, where it was forked", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const queue = yield* Queue.bounded<number>(1)
      yield* tracker.track(Effect.forkDetach(
        Effect.forEach([1, 2, 3], (n) => Queue.offer(queue, n)).pipe(FiberLabel.set("producer"))
      ))
      yield* tracker.track(Effect.forkDetach(Effect.sleep("1 hour").pipe(FiberLabel.set("sleeper"))))
      yield* TestTime.settle()
      const err = yield* Effect.flip(tracker.assertNoLeaks({ yields: 5, forkSites: true }))
      // The sleeper is counted once: TestClock's own warning fiber is not a leak.
      expect(err.live).toBe(2)
      expect(err.byLabel).toEqual({ producer: 1, sleeper: 1 })
      expect(err.fibers.map((f) => [f.label, f.waitingOn])).toEqual([
        ["producer", { _tag: "QueueOffer" }],
        ["sleeper", { _tag: "Sleep", until: 3_600_000 }]
      ])
      expect(err.message).toContain("producer: waiting on Queue.offer")
      expect(err.message).toContain("sleeper: waiting on sleep until 3600000 ms")
      expect(err.message).toContain("forked at")
      expect(err.fibers[0]!.forkSite).toContain("testing.test.ts")
      yield* Queue.shutdown(queue)
      yield* TestTime.advance("1 hour", "30 minutes")
      yield* tracker.assertNoLeaks()
    }))

  it.effect("sees a detached fiber as a leak", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.forkDetach(Effect.never)))
      expect((yield* Effect.flip(tracker.assertNoLeaks({ yields: 5 }))).live).toBe(1)
    }))
})

describe("TestTime", () => {
  it.effect("runToEnd steps the clock until the effect ends", () =>
    Effect.gen(function*() {
      const result = yield* TestTime.runToEnd(Effect.as(Effect.sleep("90 seconds"), "done"), { step: "1 second" })
      expect(result).toBe("done")
    }))

  it.effect("runToEnd gives up with TimeLimitError and interrupts the effect", () =>
    Effect.gen(function*() {
      let interrupted = false
      const exit = yield* Effect.exit(TestTime.runToEnd(
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true)))),
        { step: "1 second", limit: "10 seconds" }
      ))
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail").toBe(true)
      expect(interrupted).toBe(true)
    }))
})

describe("SeededScheduler", () => {
  const race = (seed: number) =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const worker = (name: string) =>
        Effect.gen(function*() {
          for (let i = 0; i < 4; i++) {
            log.push(`${name}${i}`)
            yield* Effect.yieldNow
          }
        })
      yield* Fiber.joinAll([yield* Effect.forkChild(worker("A")), yield* Effect.forkChild(worker("B"))])
      return log.join(" ")
    }).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed)))

  it.live("the same seed gives the same interleaving; seeds explore different ones", () =>
    Effect.gen(function*() {
      const runs = yield* Effect.forEach([1, 1, 2, 3, 4, 5, 6], race)
      expect(runs[0]).toBe(runs[1])
      expect(new Set(runs).size).toBeGreaterThan(2)
    }))

  it.live("preemption probabilities up to 1 end (the resumed operation always runs); others are refused", () =>
    Effect.gen(function*() {
      for (const preemption of [0.5, 0.9, 1]) {
        const log = yield* Effect.gen(function*() {
          const steps: Array<string> = []
          const worker = (name: string) =>
            Effect.gen(function*() {
              for (let i = 0; i < 50; i++) {
                steps.push(`${name}${i}`)
                yield* Effect.yieldNow
              }
            })
          yield* Fiber.joinAll([yield* Effect.forkChild(worker("A")), yield* Effect.forkChild(worker("B"))])
          return steps
        }).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(3, preemption)))
        expect(log).toHaveLength(100)
      }
      expect(() => new SeededScheduler(1, 1.5)).toThrow(/invalid preemption/)
      expect(() => new SeededScheduler(1, -0.1)).toThrow(/invalid preemption/)
      expect(() => new SeededScheduler(1, Number.NaN)).toThrow(/invalid preemption/)
    }))

  // The connection's accounting holds in every interleaving we try.
  it.live("connection invariants hold under 30 seeded interleavings with preemption", () =>
    Effect.gen(function*() {
      for (let seed = 1; seed <= 30; seed++) {
        const tracker = LeakTracker.make()
        const sink = yield* TestSink.make({ failAfter: (seed % 4) + 1 })
        const producer = TestProducer.aggressive(300)
        const outcome = yield* tracker.track(
          Connection.run({ producer: producer.producer, sink: sink.sink, capacity: (seed % 5) + 1 })
        ).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.2)))
        expect(outcome._tag).toBe("ClientGone")
        expect(outcome.writes).toBe((seed % 4) + 1)
        expectAccounted(outcome, producer)
        yield* tracker.assertNoLeaks()
      }
    }))
})
