import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Random, Ref } from "effect"
import { FiberLabel, Race } from "../src/testing.ts"
import * as Bugs from "./support/bugs.ts"

const raceError = <A, E extends { readonly _tag: string }>(self: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.flip(self), (error) =>
    error._tag === "RaceError"
      ? Effect.succeed(error as Extract<E, { _tag: "RaceError" }>)
      : Effect.die(`expected a RaceError, got ${error._tag}`))

describe("Race: lost update (bug 2)", () => {
  const invariant = (n: number) => n === 2

  for (const strategy of ["random", "pct", "exhaustive"] as const) {
    it.effect(`${strategy}: found, shrunk to one preemption, replayed from the printed schedule`, () =>
      Effect.gen(function*() {
        const error = yield* raceError(Race.check(Bugs.lostUpdate(false), { strategy, runs: 300, invariant }))
        expect(error.failure).toEqual({ _tag: "Violated", message: "it returned false for 1" })
        // The minimal schedule: fiber a (#1) or b (#2) is preempted between its read and its write.
        expect(error.schedule).toMatch(/^s\d+ [12]\.1\^\d+ =\d+$/)
        expect(error.reproduced).toBe(true)
        expect(error.trace.some((line) => /#1 a .*preempted/.test(line))).toBe(true)
        expect(error.message).toContain(`SLUICE_SCHEDULE='${error.schedule}'`)
        const again = yield* raceError(Race.replay(Bugs.lostUpdate(false), error.schedule, { invariant }))
        expect(again.failure).toEqual(error.failure)
        expect(again.trace).toEqual(error.trace)
      }))
  }

  it.effect("children that Effect.all starts at once are preempted and interleaved too", () =>
    Effect.gen(function*() {
      const viaAll = Effect.gen(function*() {
        const counter = yield* Ref.make(0)
        const increment = Effect.flatMap(Ref.get(counter), (n) => Ref.set(counter, n + 1))
        yield* Effect.all([increment, increment], { concurrency: "unbounded" })
        return yield* Ref.get(counter)
      })
      for (const strategy of ["random", "pct", "exhaustive"] as const) {
        const error = yield* raceError(Race.check(viaAll, { strategy, invariant }))
        expect(error.schedule).toMatch(/^s\d+ 1\.1\^\d+ =\d+$/)
      }
    }))

  it.effect("the fix passes every schedule with up to two preemptions", () =>
    Effect.gen(function*() {
      const report = yield* Race.check(Bugs.lostUpdate(true), { strategy: "exhaustive", invariant })
      expect(report.complete).toBe(true)
      expect(report.schedules).toBe(report.runs)
    }))
})

describe("Race: check-then-act (bug 2)", () => {
  const invariant = (initialisations: number) => initialisations === 1

  it.effect("a lazy initialisation runs twice: found and shrunk; the locked version passes every schedule", () =>
    Effect.gen(function*() {
      const error = yield* raceError(Race.check(Bugs.lazyInit(false), { strategy: "random", invariant }))
      expect(error.schedule).toMatch(/^s\d+ [12]\.1\^\d+ =\d+$/)
      yield* Effect.flip(Race.replay(Bugs.lazyInit(false), error.schedule, { invariant }))
      const report = yield* Race.check(Bugs.lazyInit(true), {
        strategy: Race.exhaustive({ preemptionBound: 1 }),
        invariant
      })
      expect(report.complete).toBe(true)
    }))
})

describe("Race: a narrow window (bug 3)", () => {
  const invariant = (got: ReadonlyArray<number>) => Bugs.ringBufferOk(got)

  it.effect("random schedules miss the ring buffer overrun in 300 runs; PCT finds it within 10", () =>
    Effect.gen(function*() {
      const random = yield* Race.check(Bugs.ringBuffer(false), { strategy: "random", runs: 300, invariant })
      expect(random.runs).toBe(300)
      const error = yield* raceError(Race.check(Bugs.ringBuffer(false), { strategy: "pct", runs: 10, invariant }))
      expect(error.run).toBeLessThanOrEqual(10)
      expect(error.failure._tag).toBe("Violated")
    }))

  it.effect("the fixed buffer passes PCT (which turns fair after a while, so its spin-wait ends)", () =>
    Effect.gen(function*() {
      const report = yield* Race.check(Bugs.ringBuffer(true), { strategy: "pct", runs: 30, invariant })
      expect(report.runs).toBe(30)
    }))
})

describe("Race: done while events are buffered (bug 5)", () => {
  const invariant = (seen: ReadonlyArray<number>) => {
    expect(seen).toEqual([1, 2, 3])
  }

  it.effect("racing the done signal against a take loses buffered events", () =>
    Effect.gen(function*() {
      const error = yield* raceError(Race.check(Bugs.doneWhileBuffered(false), { invariant }))
      expect(error.failure._tag).toBe("Violated")
      // Effect's own runtime order (wake-ups inline) loses them too.
      yield* raceError(Race.check(Bugs.doneWhileBuffered(false), { invariant, wakeups: "inline" }))
    }))

  it.effect("draining the queue after done is not enough: the race's losing take can discard an event", () =>
    Effect.gen(function*() {
      const error = yield* raceError(Race.check(Bugs.doneThenDrain, { invariant, runs: 300 }))
      expect(error.failure._tag).toBe("Violated")
      // With wake-ups inline (Effect's runtime order) it takes a preemption between the take and
      // the end of its fiber, which today's runtime makes only every 2,048 operations: rare in
      // production, found here.
      const inline = yield* raceError(Race.check(Bugs.doneThenDrain, { invariant, runs: 300, wakeups: "inline" }))
      expect(inline.schedule).toMatch(/\^/)
      yield* Race.check(Bugs.doneThenDrain, {
        invariant,
        runs: 300,
        wakeups: "inline",
        strategy: Race.random({ preemption: 0 })
      })
    }))

  it.effect("the fix (one channel, ended by the producer) passes every explored schedule", () =>
    Effect.gen(function*() {
      const exhaustive = yield* Race.check(Bugs.doneWhileBuffered(true), {
        strategy: Race.exhaustive({ preemptionBound: 1 }),
        invariant
      })
      expect(exhaustive).toMatchObject({ complete: true, schedules: 1_484 })
      yield* Race.check(Bugs.doneWhileBuffered(true), { strategy: "random", runs: 200, invariant })
      yield* Race.check(Bugs.doneWhileBuffered(true), { strategy: "pct", runs: 200, invariant })
    }))
})

describe("Race: bugs the bubble finds in one run (bugs 1 and 4)", () => {
  it.effect("every strategy reports the drain leak and the deadlock at run 1", () =>
    Effect.gen(function*() {
      for (const strategy of ["random", "pct", "exhaustive"] as const) {
        const leak = yield* raceError(Race.check(Bugs.drainLeak(false), { strategy }))
        expect([leak.run, leak.failure._tag === "Bubble" && leak.failure.error._tag]).toEqual([1, "LeakError"])
        const deadlock = yield* raceError(Race.check(Bugs.deadlock, { strategy }))
        expect([deadlock.run, deadlock.failure._tag === "Bubble" && deadlock.failure.error._tag]).toEqual([
          1,
          "DeadlockError"
        ])
      }
    }))
})

describe("Race: exhaustive search (bug 7)", () => {
  // Two fibers of three steps each, separated by yields.
  const twoFibers = Effect.gen(function*() {
    const log: Array<string> = []
    const worker = (name: string) =>
      Effect.gen(function*() {
        for (let i = 0; i < 3; i++) {
          log.push(`${name}${i}`)
          if (i < 2) yield* Effect.yieldNow
        }
      })
    const a = yield* Effect.forkChild(worker("A"))
    const b = yield* Effect.forkChild(worker("B"))
    yield* Fiber.joinAll([a, b])
    return log.join(" ")
  })

  it.effect("without preemption: exactly the C(6,3) = 20 interleavings, each once", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const report = yield* Race.check(twoFibers, {
        strategy: Race.exhaustive({ preemptionBound: 0 }),
        invariant: (log) => {
          seen.push(log)
        }
      })
      expect(report).toMatchObject({ runs: 20, schedules: 20, complete: true })
      expect(new Set(seen).size).toBe(20)
    }))

  // Every operation after the second of a turn is a preemption point when the
  // other fiber is ready, so this count depends on how many operations effect
  // runs per step; it is exact and the same on every run.
  it.effect("with one preemption: the exact number of schedules explored, each distinct", () =>
    Effect.gen(function*() {
      const report = yield* Race.check(twoFibers, { strategy: Race.exhaustive({ preemptionBound: 1 }) })
      expect(report).toMatchObject({ runs: 438, schedules: 438, complete: true })
    }))

  it.effect("a bound on runs stops the search and says it is not complete", () =>
    Effect.gen(function*() {
      const report = yield* Race.check(twoFibers, { strategy: Race.exhaustive({ preemptionBound: 1 }), runs: 10 })
      expect(report).toMatchObject({ runs: 10, complete: false })
    }))
})

describe("Race: wake-ups", () => {
  // Two fibers wait on one Deferred (they start at once, so both wait before
  // the opener goes on); then the opener completes it. Who continues first?
  const twoWaiters = Effect.gen(function*() {
    const gate = yield* Deferred.make<void>()
    const order: Array<string> = []
    const waiter = (name: string) =>
      Effect.andThen(Deferred.await(gate), Effect.sync(() => order.push(name))).pipe(FiberLabel.set(name))
    const a = yield* Effect.forkChild(waiter("a"), { startImmediately: true })
    const b = yield* Effect.forkChild(waiter("b"), { startImmediately: true })
    yield* Deferred.succeed(gate, undefined)
    order.push("opener")
    yield* Fiber.joinAll([a, b])
    return order.join(" ")
  })

  it.effect("the order of fibers woken by one Deferred is explored (Effect resumes them synchronously)", () =>
    Effect.gen(function*() {
      const scheduled = new Set<string>()
      yield* Race.check(twoWaiters, {
        strategy: Race.exhaustive({ preemptionBound: 0 }),
        invariant: (order) => void scheduled.add(order)
      })
      // Scheduled, the woken fibers wait for turns of their own, in either order.
      expect([...scheduled].toSorted()).toEqual(["opener a b", "opener b a"])
      const inline = new Set<string>()
      yield* Race.check(twoWaiters, {
        strategy: Race.exhaustive({ preemptionBound: 0 }),
        wakeups: "inline",
        invariant: (order) => void inline.add(order)
      })
      // Inline, both waiters run inside Deferred.succeed, in the order they
      // started waiting, before the opener continues: one order only.
      expect([...inline]).toEqual(["a b opener"])
    }))
})

describe("Race: replay", () => {
  const invariant = (n: number) => n === 2

  it.effect("a schedule that no longer matches the program fails loudly: diverged at step k", () =>
    Effect.gen(function*() {
      const error = yield* raceError(Race.check(Bugs.lostUpdate(false), { invariant }))
      // The same schedule on a program with one more fiber forked first.
      const changed = Effect.andThen(Effect.forkChild(Effect.void), Bugs.lostUpdate(false))
      const diverged = yield* Effect.flip(Race.replay(changed, error.schedule, { invariant }))
      expect(diverged._tag).toBe("DivergedError")
      expect(diverged.message).toMatch(/^diverged at step \d+: /)
    }))

  it.effect("a fixed program replays the old schedule and passes: a regression test", () =>
    Effect.gen(function*() {
      // Ref.update keeps the same shape (one read-modify-write per fiber) but atomically.
      const error = yield* raceError(Race.check(Bugs.lostUpdate(false), { invariant }))
      const exit = yield* Effect.exit(Race.replay(Bugs.lostUpdate(true), error.schedule, { invariant }))
      // Either it passes or it says it diverged: never a silent other schedule.
      expect(Exit.isSuccess(exit) || (exit.cause.toString().includes("diverged at step"))).toBe(true)
    }))

  it.effect("a schedule that cannot be read is refused with InvalidScheduleError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Race.replay(Effect.void, "s1 4>x"))
      expect(error._tag).toBe("InvalidScheduleError")
      expect(error.message).toContain(`"4>x"`)
    }))

  it.effect("SLUICE_SCHEDULE makes check replay that schedule (optionally only in the check of that name)", () =>
    Effect.gen(function*() {
      const found = yield* raceError(Race.check(Bugs.lostUpdate(false), { invariant }))
      const previous = process.env[Race.environmentVariable]
      try {
        process.env[Race.environmentVariable] = found.schedule
        const replayed = yield* raceError(Race.check(Bugs.lostUpdate(false), { invariant, strategy: "pct" }))
        expect(replayed.run).toBe(0)
        expect(replayed.schedule).toBe(found.schedule)
        process.env[Race.environmentVariable] = `other=${found.schedule}`
        const explored = yield* raceError(Race.check(Bugs.lostUpdate(false), { invariant, name: "mine" }))
        expect(explored.run).toBeGreaterThan(0)
        process.env[Race.environmentVariable] = `mine=${found.schedule}`
        expect((yield* raceError(Race.check(Bugs.lostUpdate(false), { invariant, name: "mine" }))).run).toBe(0)
      } finally {
        if (previous === undefined) delete process.env[Race.environmentVariable]
        else process.env[Race.environmentVariable] = previous
      }
    }))
})

describe("Race: determinism", () => {
  it.effect("the same seed gives the same run: Random is seeded by the run", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const ref = yield* Ref.make(0)
        const fibers = yield* Effect.forEach([1, 2, 3], () =>
          Effect.forkChild(Effect.flatMap(Random.nextIntBetween(1, 10), (n) => Ref.update(ref, (x) => x * 10 + n))))
        yield* Fiber.joinAll(fibers)
        return yield* Ref.get(ref)
      })
      yield* Race.determinism(program, { seed: 5 })
    }))

  it.effect("Math.random in the program is reported with the first trace line that differs", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const fibers = yield* Effect.forEach([1, 2, 3], () =>
          Effect.forkChild(Effect.gen(function*() {
            const turns = Math.random() < 0.5 ? 1 : 4
            for (let i = 0; i < turns; i++) yield* Effect.yieldNow
          })))
        yield* Fiber.joinAll(fibers)
      })
      let error: Race.NondeterminismError | undefined
      for (let attempt = 0; attempt < 20 && error === undefined; attempt++) {
        const exit = yield* Effect.exit(Race.determinism(program, { seed: attempt }))
        if (Exit.isFailure(exit)) {
          error = exit.cause.reasons[0]?._tag === "Fail"
            ? exit.cause.reasons[0].error
            : undefined
        }
      }
      expect(error?._tag).toBe("NondeterminismError")
      expect(error?.message).toContain("differ at trace line")
    }))
})

describe("Race: seeded interruptions", () => {
  // A resource counted open in one step and closed by a finalizer installed in
  // the next: an interruption between the two leaks it.
  const resource = (safe: boolean) =>
    Effect.gen(function*() {
      const open = yield* Ref.make(0)
      const acquire = Ref.update(open, (n) => n + 1)
      const release = Ref.update(open, (n) => n - 1)
      const use = Effect.andThen(Effect.yieldNow, Effect.yieldNow)
      const worker = safe
        ? Effect.acquireUseRelease(acquire, () => use, () => release)
        : Effect.gen(function*() {
          yield* acquire
          yield* Effect.yieldNow
          yield* Effect.ensuring(use, release)
        })
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(worker))
      yield* Fiber.awaitAll(fibers)
      return yield* Ref.get(open)
    })

  it.effect("an interruption between acquiring and installing the finalizer is found; acquireUseRelease is safe", () =>
    Effect.gen(function*() {
      const invariant = (open: number) => open === 0
      const error = yield* raceError(Race.check(resource(false), { faults: { interrupt: 0.2 }, invariant }))
      expect(error.schedule).toMatch(/ \d+!\d+ /)
      expect(error.trace.some((line) => line.includes("fault: interrupt"))).toBe(true)
      yield* Race.check(resource(true), { faults: { interrupt: 0.2 }, invariant, runs: 200 })
    }))
})

describe("Race: options", () => {
  it("probabilities and bounds that cannot work are refused, naming the option", () => {
    expect(() => Race.random({ preemption: 1.5 })).toThrow(/invalid preemption/)
    expect(() => Race.random({ preemption: Number.NaN })).toThrow(/invalid preemption/)
    expect(() => Race.pct({ depth: 0 })).toThrow(/invalid depth/)
    expect(() => Race.exhaustive({ preemptionBound: -1 })).toThrow(/invalid preemptionBound/)
  })

  it.effect("an invariant that returns an Effect (or anything but a boolean) is refused, not passed", () =>
    Effect.gen(function*() {
      const error = yield* raceError(
        Race.check(Effect.succeed(1), { runs: 1, invariant: ((n: number) => Effect.succeed(n === 2)) as never })
      )
      expect(error.failure._tag).toBe("Violated")
      expect(error.message).toContain("must return a boolean or nothing")
    }))

  it.effect("random preemption of 1 (every point) still ends: the resumed operation always runs", () =>
    Effect.gen(function*() {
      const report = yield* Race.check(Bugs.lostUpdate(true), {
        strategy: Race.random({ preemption: 1 }),
        runs: 20,
        invariant: (n) => n === 2
      })
      expect(report.runs).toBe(20)
    }))
})
