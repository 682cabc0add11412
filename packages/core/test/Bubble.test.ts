import { describe, expect, it as base } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Latch, Queue, Random, Semaphore } from "effect"
import { TestClock } from "effect/testing"
import { Connection } from "../src/index.ts"
import { Bubble, FiberLabel, LiveFiber, Race, TestProducer, TestSink } from "../src/testing.ts"
import * as Bugs from "./support/bugs.ts"

const it = Bubble.extend(base)

describe("Bubble: time", () => {
  it.effect("a program that sleeps for two minutes ends at once, two minutes later on the bubble's clock", () =>
    Effect.gen(function*() {
      const at = yield* Bubble.run(Effect.andThen(Effect.sleep("2 minutes"), Clock.currentTimeMillis))
      expect(at).toBe(120_000)
    }))

  it.effect("timers fire in due order, ties in the order they were set, with no step to choose", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const log: Array<string> = []
        const sleeper = (name: string, ms: number) =>
          Effect.forkChild(Effect.andThen(
            Effect.sleep(ms),
            Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => log.push(`${name}@${t}`)))
          ))
        const fibers = [
          yield* sleeper("c", 3_000),
          yield* sleeper("a", 1),
          yield* sleeper("b1", 2_500),
          yield* sleeper("b2", 2_500)
        ]
        yield* Fiber.joinAll(fibers)
        return log
      })
      expect(yield* Bubble.run(program)).toEqual(["a@1", "b1@2500", "b2@2500", "c@3000"])
    }))

  it.effect("TestClock.adjust inside a bubble waits that long while the others run", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const ticks: Array<number> = []
        yield* Effect.forkChild(Effect.forever(Effect.andThen(
          Effect.sleep("1 second"),
          Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => ticks.push(t)))
        )))
        yield* TestClock.adjust("3500 millis")
        return { now: yield* Clock.currentTimeMillis, ticks }
      })
      expect(yield* Bubble.run(program, { leaks: false })).toEqual({ now: 3_500, ticks: [1_000, 2_000, 3_000] })
    }))

  it.effect("time does not move while a fiber waits on something outside the bubble", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const log: Array<string> = []
        const sleeper = yield* Effect.forkChild(
          Effect.andThen(Effect.sleep("1 millis"), Effect.sync(() => log.push("slept")))
        )
        yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 20)))
        log.push("promise")
        yield* Fiber.join(sleeper)
        return log
      })
      expect(yield* Bubble.run(program)).toEqual(["promise", "slept"])
    }))

  it.effect("Bubble.external marks a callback as external: the bubble waits for it", () =>
    Effect.gen(function*() {
      const reply = Effect.callback<string>((resume) => {
        const handle = setTimeout(() => resume(Effect.succeed("reply")), 20)
        return Effect.sync(() => clearTimeout(handle))
      })
      expect(yield* Bubble.run(reply.pipe(Bubble.external("a test server")))).toBe("reply")
    }))
})

describe("Bubble: deadlocks", () => {
  it.effect(
    "two fibers each awaiting the other's Deferred: DeadlockError naming both and what they wait on",
    () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Bubble.run(Bugs.deadlock, { forkSites: true }))
        expect(error._tag).toBe("DeadlockError")
        if (error._tag !== "DeadlockError") return
        const waits = Object.fromEntries(error.fibers.map((f) => [f.label, f.waitingOn._tag]))
        expect(waits).toEqual({ root: "Join", pinger: "Deferred", ponger: "Deferred" })
        expect(error.time).toBe(0)
        expect(error.message).toContain("pinger: waiting on Deferred.await")
        expect(error.message).toContain("ponger: waiting on Deferred.await")
        expect(error.message).toContain("support/bugs.ts")
        expect(error.fibers.find((f) => f.label === "pinger")?.forkSite).toContain("support/bugs.ts")
      }),
    5_000
  )

  it.effect("a sleep of two minutes is not a deadlock; a wait on nothing is one, whatever the timers before", () =>
    Effect.gen(function*() {
      const stuck = Effect.andThen(Effect.sleep("2 minutes"), Effect.flatMap(Deferred.make<void>(), Deferred.await))
      const error = yield* Effect.flip(Bubble.run(stuck))
      expect(error._tag).toBe("DeadlockError")
      if (error._tag === "DeadlockError") expect(error.time).toBe(120_000)
    }))

  it.effect("a queue take nobody feeds, a latch nobody opens, a semaphore nobody releases, a join", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const queue = yield* Queue.unbounded<number>()
        const latch = yield* Latch.make(false)
        const semaphore = yield* Semaphore.make(0)
        const stuck: Array<Fiber.Fiber<unknown>> = [
          yield* Effect.forkChild(Queue.take(queue).pipe(FiberLabel.set("taker"))),
          yield* Effect.forkChild(latch.await.pipe(FiberLabel.set("latched"))),
          yield* Effect.forkChild(semaphore.take(1).pipe(FiberLabel.set("permit"))),
          yield* Effect.forkChild(Effect.never.pipe(FiberLabel.set("never")))
        ]
        const joiner = yield* Effect.forkChild(Fiber.join(stuck[0]!).pipe(FiberLabel.set("joiner")))
        yield* Fiber.joinAll([...stuck, joiner])
      })
      const error = yield* Effect.flip(Bubble.run(program))
      expect(error._tag).toBe("DeadlockError")
      if (error._tag !== "DeadlockError") return
      expect(error.fibers.map((f) => `${f.label}: ${LiveFiber.describe(f.waitingOn)}`)).toEqual([
        "root: Fiber.joinAll",
        "taker: Queue.take",
        "latched: Latch.await",
        "permit: Semaphore.take",
        "never: Effect.never",
        "joiner: Fiber.join"
      ])
    }))

  it.effect("a callback the kit cannot classify is given a short grace, then reported with its source", () =>
    Effect.gen(function*() {
      const silent = Effect.callback<void>(function register(_resume) {})
      const error = yield* Effect.flip(Bubble.run(silent, { callbackGrace: "5 millis" }))
      expect(error._tag).toBe("DeadlockError")
      if (error._tag === "DeadlockError") expect(error.fibers[0]?.waitingOn._tag).toBe("Callback")
    }))

  it.effect("an endless busy loop fails with StepLimitError instead of hanging", () =>
    Effect.gen(function*() {
      const spin = Effect.forever(Effect.yieldNow).pipe(FiberLabel.set("spinner"))
      const error = yield* Effect.flip(Bubble.run(spin, { maxSteps: 500 }))
      expect(error._tag).toBe("StepLimitError")
      expect(error.message).toContain("spinner")
    }))
})

describe("Bubble: leaks", () => {
  it.effect("the drain leak: a producer blocked on a full queue after its consumer stopped is named", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Bubble.run(Bugs.drainLeak(false)))
      expect(error._tag).toBe("LeakError")
      if (error._tag !== "LeakError") return
      expect(error.live).toBe(1)
      expect(error.fibers.map((f) => [f.label, f.waitingOn._tag])).toEqual([["producer", "QueueOffer"]])
      expect(error.message).toContain("producer: waiting on Queue.offer")
      expect(yield* Bubble.run(Bugs.drainLeak(true))).toBe(1)
    }))

  it.effect("forkChild, forkDetach and forkIn-a-longer-scope leaks are caught; forkScoped fibers are not leaks", () =>
    Effect.gen(function*() {
      const leakOf = (fork: Effect.Effect<unknown>) => Effect.map(Effect.flip(Bubble.run(fork)), (e) => e._tag)
      expect(yield* leakOf(Effect.forkChild(Effect.never))).toBe("LeakError")
      expect(yield* leakOf(Effect.forkDetach(Effect.never))).toBe("LeakError")
      expect(yield* Bubble.run(Effect.asVoid(Effect.forkScoped(Effect.never)))).toBeUndefined()
    }))

  it.effect("a fiber that only needs more turns to end is not a leak", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const done = yield* Deferred.make<void>()
        yield* Effect.forkChild(Effect.gen(function*() {
          yield* Deferred.succeed(done, undefined)
          for (let i = 0; i < 5; i++) yield* Effect.yieldNow
        }))
        yield* Deferred.await(done)
      })
      expect(yield* Bubble.run(program)).toBeUndefined()
    }))

  it.effect("leaks: false turns the check off (the fibers are still interrupted)", () =>
    Effect.gen(function*() {
      let interrupted = false
      const program = Effect.forkDetach(
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true))))
      )
      yield* Bubble.run(program, { leaks: false })
      expect(interrupted).toBe(true)
    }))

  it.effect("the program's own failure is reported as is", () =>
    Effect.gen(function*() {
      expect(yield* Effect.flip(Bubble.run(Effect.fail("boom")))).toBe("boom")
    }))
})

describe("Bubble: running", () => {
  it.effect("runs are deterministic and Random is seeded by the seed option", () =>
    Effect.gen(function*() {
      const draw = Effect.all([Random.next, Random.next])
      const a = yield* Bubble.run(draw, { seed: 7 })
      expect(yield* Bubble.run(draw, { seed: 7 })).toEqual(a)
      expect(yield* Bubble.run(draw, { seed: 8 })).not.toEqual(a)
    }))

  it.effect("a bubble inside a bubble: the outer one waits for the inner run, however long it takes", () =>
    Effect.gen(function*() {
      const inner = Race.check(Bugs.lostUpdate(true), { runs: 200, invariant: (n) => n === 2 })
      expect((yield* Bubble.run(inner, { callbackGrace: "1 millis" })).runs).toBe(200)
    }))

  it.effect("interrupting the caller interrupts every fiber of the bubble", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const stopped = yield* Deferred.make<void>()
      const inside = Effect.gen(function*() {
        yield* Effect.forkChild(Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(stopped, undefined))))
        yield* Deferred.succeed(started, undefined)
        yield* Effect.sleep("1 hour")
      })
      const caller = yield* Effect.forkChild(Bubble.run(inside))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(caller)
      yield* Deferred.await(stopped)
    }))

  it.effect("a sluice connection runs inside a bubble: bursts and pauses on the bubble's clock", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const sink = yield* TestSink.make({ failAfter: 50 })
        const producer = TestProducer.oscillating({ burst: 30, pauses: 10, pause: "1 millis" })
        const outcome = yield* Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 1 })
        return { outcome, state: producer.state(), now: yield* Clock.currentTimeMillis }
      })
      const { now, outcome, state } = yield* Bubble.run(program)
      expect(outcome._tag).toBe("ClientGone")
      expect(outcome.delivered).toBe(50)
      expect(state).toBe("interrupted")
      expect(now).toBe(1)
    }))

  it.effect("options that cannot work are refused, naming the option", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Bubble.run(Effect.void, { maxSteps: 0 }))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("invalid maxSteps")
      const wakeups = yield* Effect.exit(Bubble.run(Effect.void, { wakeups: "later" as "inline" }))
      expect(Exit.isFailure(wakeups) && String(wakeups.cause)).toContain("invalid wakeups")
    }))
})

describe("it.bubble", () => {
  it.bubble("runs the body in a bubble: an hour of sleep takes no time", () =>
    Effect.gen(function*() {
      yield* Effect.sleep("1 hour")
      expect(yield* Clock.currentTimeMillis).toBe(3_600_000)
    }))

  it.bubble.fails("fails the test on a deadlock", () => Bugs.deadlock, { timeout: 5_000 })

  it.bubble.fails("fails the test on a leak, with no assertion to write", () => Bugs.drainLeak(false))
})
