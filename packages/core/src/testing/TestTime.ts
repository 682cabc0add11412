/**
 * Driving `TestClock` without its main trap.
 *
 * `TestClock.adjust` waits only one scheduler turn before it moves time. Sleeps
 * registered a few turns later (by a freshly forked pipeline, a `Stream.merge`,
 * a connection's deadlines) are then placed relative to the already-advanced
 * time, and a single large `adjust` gives wrong timelines or hangs. These
 * helpers let forked fibers settle before every step and move time in small
 * steps, so timelines are exact at the step's resolution.
 *
 * All helpers need `TestClock` in the context (as `it.effect` provides).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"

/**
 * The effect under test did not finish within the time limit (on the test
 * clock). Usually a deadlock, or a forgotten `Queue.end`.
 *
 * @since 0.1.0
 * @category errors
 */
export class TimeLimitError extends Data.TaggedError("TimeLimitError")<{ readonly limit: Duration.Duration }> {
  override get message(): string {
    return `did not finish within ${Duration.format(this.limit)} of test-clock time`
  }
}

/**
 * Lets other fibers run for `turns` scheduler turns (default 20). Costs no
 * time, real or virtual.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TestClock } from "effect/testing"
 * import { TestTime } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   yield* Effect.forkChild(Effect.sleep("1 second"))
 *   yield* TestTime.settle() // let the fork register its sleep first
 *   yield* TestClock.adjust("1 second")
 * })
 * ```
 *
 * @since 0.1.0
 * @category time
 */
export const settle = (turns = 20): Effect.Effect<void> =>
  Effect.suspend(() => {
    let i = 0
    return Effect.whileLoop({ while: () => i++ < turns, body: () => Effect.yieldNow, step: () => {} })
  })

/**
 * Moves the test clock forward by `total` in increments of `step` (default
 * 1 millisecond), settling before each increment.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TestTime } from "@sluice/core/testing"
 *
 * // 60 s of TestClock time in 1 s steps, settling the fibers after each.
 * const program = TestTime.advance("60 seconds", "1 second")
 * ```
 *
 * @since 0.1.0
 * @category time
 */
export const advance = (total: Duration.Input, step: Duration.Input = 1): Effect.Effect<void> =>
  Effect.gen(function*() {
    const totalMs = Duration.toMillis(Duration.fromInputUnsafe(total))
    const stepMs = Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(step)))
    for (let moved = 0; moved < totalMs; moved += stepMs) {
      yield* settle()
      yield* TestClock.adjust(Math.min(stepMs, totalMs - moved))
    }
    yield* settle()
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Test-clock time per step. Default 1 millisecond. */
  readonly step?: Duration.Input | undefined
  /** Give up (with {@link TimeLimitError}) after this much test-clock time. Default 1 hour. */
  readonly limit?: Duration.Input | undefined
}

/**
 * Runs `effect` to completion under the test clock: forks it, then alternates
 * settling and stepping the clock until it ends. Returns its result; fails with
 * {@link TimeLimitError} (after interrupting it) if it outlives `limit`.
 *
 * Prefer `Bubble.run`: it needs no step, jumps straight to the next timer,
 * tells a deadlock (`DeadlockError`) from a long sleep, and fails on fibers
 * left running. `runToEnd` runs `effect` in a fiber of its own, whose end
 * interrupts the fibers it forked, so it cannot see a `forkChild` leak.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection } from "@sluice/core"
 * import { TestProducer, TestSink, TestTime } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const sink = yield* TestSink.make({ delay: "5 millis" })
 *   const p = TestProducer.oscillating({ burst: 3, pauses: 2, pause: "1 second" })
 *   return yield* TestTime.runToEnd(Connection.run({ producer: p.producer, sink: sink.sink }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category time
 */
export const runToEnd = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options: RunOptions = {}
): Effect.Effect<A, E | TimeLimitError, R> =>
  Effect.gen(function*() {
    const stepMs = Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(options.step ?? 1)))
    const limit = Duration.fromInputUnsafe(options.limit ?? "1 hour")
    const limitMs = Duration.toMillis(limit)
    const fiber = yield* Effect.forkChild(effect)
    for (let elapsed = 0;; elapsed += stepMs) {
      yield* settle()
      const exit = fiber.pollUnsafe()
      if (exit !== undefined) return yield* exit
      if (elapsed >= limitMs) {
        yield* Fiber.interrupt(fiber)
        return yield* new TimeLimitError({ limit })
      }
      yield* TestClock.adjust(stepMs)
    }
  })
