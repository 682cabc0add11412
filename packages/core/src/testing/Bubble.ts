/**
 * A bubble: run concurrent Effect code on its own scheduler and clock, so the
 * test knows exactly when the code is stuck, leaks, or is just waiting for
 * time to pass (in the spirit of Go's `testing/synctest`).
 *
 * ```text
 *   Bubble.run(effect)
 *     │ root fiber ── forks ──► every fiber forked inside: one scheduler, one ready list
 *     │
 *     ├─ something is ready ────────► run it (one task at a time, oldest first)
 *     ├─ nothing ready, timers ─────► move the clock to the next timer
 *     ├─ nothing ready, external ───► wait for the promise / real I/O
 *     └─ nothing ready, nothing due ► DeadlockError (every fiber and what it waits on)
 *   root's body ends ──► the others run until nothing is ready ──► still alive? LeakError
 * ```
 *
 * Guarantees:
 * - A program that sleeps for hours of virtual time finishes in milliseconds:
 *   the clock jumps to the next timer whenever no fiber can run. There is no
 *   step size to choose.
 * - A deadlock fails at once with a typed `DeadlockError` listing every live
 *   fiber, its label and what it waits on (`Deferred.await`, `Queue.take`,
 *   `Queue.offer`, `Latch.await`, `Semaphore.take`, `Fiber.join`, …). Waiting
 *   on something outside the bubble (a promise, a real timer, a wait marked
 *   with {@link external}) is not a deadlock: the bubble waits for it, and
 *   does not move its clock meanwhile.
 * - When the root's body has ended, every other fiber forked inside must end
 *   without more time passing, or the run fails with a typed `LeakError`. The
 *   check is part of the run (no assertion to forget) and sees `forkChild`,
 *   `forkDetach` and `forkScoped` fibers alike.
 * - Runs are deterministic: the same program gives the same interleaving, and
 *   `Random` is seeded (`seed` option).
 *
 * Limits: fibers given another `Scheduler` inside the bubble are not owned by
 * it; a hand-written `Effect.callback` that the kit cannot classify is assumed
 * to be woken from inside the bubble, after a short real-time grace
 * (`callbackGrace`); a `TestClock.layer()` provided inside replaces the
 * bubble's clock (do not: the bubble's clock is a `TestClock`).
 *
 * @since 0.2.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Scope from "effect/Scope"
import { config } from "./internal/config.ts"
import * as Errors from "./internal/errors.ts"
import { ExternalWait } from "./internal/registry.ts"
import { runOnce } from "./internal/runner.ts"

/**
 * No fiber of the bubble could run, no timer was pending and nothing outside
 * was awaited. `fibers` lists every live fiber and what it waits on.
 *
 * @since 0.2.0
 * @category errors
 */
export const DeadlockError = Errors.DeadlockError

/**
 * @since 0.2.0
 * @category errors
 */
export type DeadlockError = Errors.DeadlockError

/**
 * Fibers forked in the bubble were still alive after its root's body ended.
 * The same error as `LeakTracker.LeakError`.
 *
 * @since 0.2.0
 * @category errors
 */
export const LeakError = Errors.LeakError

/**
 * @since 0.2.0
 * @category errors
 */
export type LeakError = Errors.LeakError

/**
 * The bubble ran more scheduling steps than `maxSteps`.
 *
 * @since 0.2.0
 * @category errors
 */
export const StepLimitError = Errors.StepLimitError

/**
 * @since 0.2.0
 * @category errors
 */
export type StepLimitError = Errors.StepLimitError

/**
 * What a bubble adds to the errors of the program it runs.
 *
 * @since 0.2.0
 * @category errors
 */
export type BubbleError = DeadlockError | LeakError | StepLimitError

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Show each fiber's fork site in error messages. Default `false` (the `forkSite` field is always filled when known). */
  readonly forkSites?: boolean | undefined
  /** Fail with `StepLimitError` after this many scheduling steps. Default 1,000,000. */
  readonly maxSteps?: number | undefined
  /** Seed of the program's `Random` service. Default 0. */
  readonly seed?: number | undefined
  /** Check for leaks when the root's body ends. Default `true`; `false` turns the check off. */
  readonly leaks?: boolean | undefined
  /**
   * Real time to wait for a wake-up when the only blocked fibers wait in
   * callbacks the kit cannot classify, before reporting a deadlock. Default
   * 50 milliseconds.
   */
  readonly callbackGrace?: Duration.Input | undefined
  /**
   * How a fiber woken by another (a `Deferred` completed, a join, a callback,
   * an interruption) continues. `"scheduled"` (default): it becomes a ready
   * task like any other, so the order of wake-ups is a scheduling choice and
   * the race runner explores it; this includes orders Effect's semantics
   * allow but today's runtime never produces (the fiber that completed the
   * `Deferred` continuing first). `"inline"`: it runs at once inside the task
   * that woke it, as Effect's runtime does.
   */
  readonly wakeups?: "scheduled" | "inline" | undefined
}

/**
 * Runs `effect` in a bubble (see the module documentation): its own
 * scheduler, a virtual `TestClock` that jumps to the next timer when nothing
 * can run, deadlock detection, and a leak check when it ends. A `Scope` is
 * provided and closed before the leak check.
 *
 * @example
 * ```ts
 * import { Deferred, Effect, Fiber } from "effect"
 * import { Bubble, FiberLabel } from "@sluice/core/testing"
 *
 * // Two fibers, each waiting for the other: fails with DeadlockError at once.
 * const deadlock = Effect.gen(function*() {
 *   const a = yield* Deferred.make<void>()
 *   const b = yield* Deferred.make<void>()
 *   const fa = yield* Effect.forkChild(Deferred.await(b).pipe(Effect.andThen(Deferred.succeed(a, undefined)), FiberLabel.set("a")))
 *   const fb = yield* Effect.forkChild(Deferred.await(a).pipe(Effect.andThen(Deferred.succeed(b, undefined)), FiberLabel.set("b")))
 *   yield* Fiber.joinAll([fa, fb])
 * })
 * const result = Bubble.run(deadlock) // fails: DeadlockError, "#1 a: waiting on Deferred.await", …
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const run = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  options?: Options
): Effect.Effect<A, E | BubbleError, Exclude<R, Scope.Scope>> =>
  Effect.suspend(() => runOnce(effect, config("Bubble.run", options, false))).pipe(
    Effect.flatMap((result): Effect.Effect<A, E | BubbleError> => {
      if (result.failure !== undefined) return Effect.fail(result.failure as BubbleError)
      return result.exit === undefined ? Effect.interrupt : result.exit
    })
  )

/**
 * Marks what `effect` waits on as external to the bubble (a server, a
 * process, a callback from a library): while a fiber waits inside it, the
 * bubble waits too instead of reporting a deadlock, and does not move its
 * clock. Promises (`Effect.promise`, `Effect.tryPromise`) and live-clock
 * timers are recognised without it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bubble } from "@sluice/core/testing"
 *
 * const fromServer = Effect.callback<string>((resume) => {
 *   setTimeout(() => resume(Effect.succeed("reply")), 10)
 * }).pipe(Bubble.external("the test server"))
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const external: {
  (what: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R> =>
    Effect.provideService(self, ExternalWait, what)
)

/**
 * The shape of `it.effect` from `@effect/vitest` that {@link extend} needs.
 *
 * @since 0.2.0
 * @category testing
 */
export interface EffectTest {
  (name: string, self: () => Effect.Effect<any, any, any>, timeout?: number): void
  readonly only: (name: string, self: () => Effect.Effect<any, any, any>, timeout?: number) => void
  readonly skip: (name: string, self: () => Effect.Effect<any, any, any>, timeout?: number) => void
  readonly fails: (name: string, self: () => Effect.Effect<any, any, any>, timeout?: number) => void
}

/**
 * Options of a bubble test: the bubble's options plus vitest's timeout (real
 * milliseconds).
 *
 * @since 0.2.0
 * @category testing
 */
export interface TestOptions extends Options {
  readonly timeout?: number | undefined
}

/**
 * `it.bubble(name, () => effect, options?)`: a test whose body runs in a
 * bubble.
 *
 * @since 0.2.0
 * @category testing
 */
export interface Tester {
  <A, E>(name: string, self: () => Effect.Effect<A, E, Scope.Scope>, options?: TestOptions): void
  readonly only: <A, E>(name: string, self: () => Effect.Effect<A, E, Scope.Scope>, options?: TestOptions) => void
  readonly skip: <A, E>(name: string, self: () => Effect.Effect<A, E, Scope.Scope>, options?: TestOptions) => void
  readonly fails: <A, E>(name: string, self: () => Effect.Effect<A, E, Scope.Scope>, options?: TestOptions) => void
}

/**
 * Adds `bubble` to `@effect/vitest`'s `it`: `it.bubble(name, () => effect)`
 * runs the body with {@link run}, so a deadlock or a leak fails the test.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bubble } from "@sluice/core/testing"
 *
 * declare const vitestIt: { readonly effect: Bubble.EffectTest }
 * const it = Bubble.extend(vitestIt)
 * it.bubble("a sleep of an hour takes no time", () => Effect.sleep("1 hour"))
 * ```
 *
 * @since 0.2.0
 * @category testing
 */
export const extend = <I extends { readonly effect: EffectTest }>(it: I): I & { readonly bubble: Tester } => {
  const make =
    (register: EffectTest["only"]) =>
    <A, E>(name: string, self: () => Effect.Effect<A, E, Scope.Scope>, options?: TestOptions) =>
      register(name, () => run(Effect.suspend(self), options), options?.timeout)
  const bubble: Tester = Object.assign(make((n, s, t) => it.effect(n, s, t)), {
    only: make((n, s, t) => it.effect.only(n, s, t)),
    skip: make((n, s, t) => it.effect.skip(n, s, t)),
    fails: make((n, s, t) => it.effect.fails(n, s, t))
  })
  return new Proxy(it, {
    get: (target, key, receiver) => key === "bubble" ? bubble : Reflect.get(target, key, receiver)
  }) as I & { readonly bubble: Tester }
}
