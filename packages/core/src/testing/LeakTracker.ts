/**
 * Counts live fibers, so a test can prove that a stream left nothing behind,
 * and says which fibers are left and what each waits on when it did not.
 *
 * Effect 4 has no fiber registry and no `Supervisor`; instead the runtime
 * calls the `Metric.FiberRuntimeMetrics` service for every fiber started and
 * ended while that service is in the context (forks inherit it; so do HTTP
 * request fibers, stream producers and layers built inside). The tracker
 * provides such a service and keeps a count per label: sluice names each fiber
 * it forks (`sluice/connection/c3/writer`, …), and `FiberLabel.set` names
 * yours. It also installs a tracer hook that sees each fiber run, so a failed
 * assertion lists every live fiber with its label, where it was forked and
 * what it is blocked in (`Queue.offer`, `Deferred.await`, a sleep, …).
 *
 * Guarantees:
 * - only fibers forked inside `track` (or under `layer`) are counted; a fiber
 *   forked elsewhere is not seen (a `Bubble` sees every fiber it runs);
 * - `TestClock`'s own warning fiber (forked when a test sleeps without
 *   adjusting the clock) is not counted;
 * - the metrics and tracer already installed keep receiving their calls.
 *
 * `assertNoLeaks` is a separate step a test can forget; `Bubble.run` checks
 * for leaks by itself when its program ends.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type { TestClock } from "effect/testing"
import * as Tracer from "effect/Tracer"
import { FiberLabel } from "../internal/fiberLabel.ts"
import * as Errors from "./internal/errors.ts"
import { forwardingMetrics, KitFiber, Registry } from "./internal/registry.ts"

/**
 * Fibers were still alive when the tracker expected none. `fibers` lists each
 * with what it waits on; the message names them.
 *
 * @since 0.1.0
 * @category errors
 */
export const LeakError = Errors.LeakError

/**
 * @since 0.1.0
 * @category errors
 */
export type LeakError = Errors.LeakError

/**
 * @since 0.1.0
 * @category models
 */
export interface LeakTracker {
  /** Runs `effect` with the tracker installed: fibers forked inside it are counted. */
  readonly track: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** The tracker as a layer (for servers and other layers built in tests). */
  readonly layer: Layer.Layer<never>
  /** Fibers started under the tracker and not yet ended. */
  readonly live: () => number
  /** Fibers started under the tracker since it was made. */
  readonly started: () => number
  /** Live fibers per label (fibers without one are `unlabeled`). */
  readonly byLabel: () => Readonly<Record<string, number>>
  /**
   * Succeeds once at most `baseline` fibers are alive, letting fibers that
   * are finishing run first (up to `yields` scheduler turns, no real time);
   * otherwise fails with {@link LeakError} listing what is alive (with fork
   * sites in the message when `forkSites` is true).
   */
  readonly assertNoLeaks: (
    options?: { readonly baseline?: number; readonly yields?: number; readonly forkSites?: boolean }
  ) => Effect.Effect<void, LeakError>
}

const isTestClock = (clock: Clock.Clock): clock is TestClock.TestClock =>
  typeof (clock as Partial<TestClock.TestClock>).adjust === "function" &&
  typeof (clock as Partial<TestClock.TestClock>).withLive === "function"

/**
 * Creates a tracker.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LeakTracker } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const tracker = LeakTracker.make()
 *   yield* tracker.track(Effect.scoped(Effect.forkScoped(Effect.never)))
 *   yield* tracker.assertNoLeaks() // the scope closed: nothing alive
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): LeakTracker => {
  const registry = new Registry()
  const counts = new Map<string, number>()
  let live = 0
  let started = 0
  const own = new WeakSet<object>()
  // Fibers that ran `track` were not forked under the tracker: never leaks.
  const callers = new WeakSet<object>()
  const labelOf = (context: Context.Context<never>) => Context.get(context, FiberLabel)

  const onStart = (context: Context.Context<never>) => {
    if (Context.get(context, KitFiber)) return
    live++
    started++
    const key = labelOf(context)
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  const onEnd = (context: Context.Context<never>) => {
    if (Context.get(context, KitFiber)) return
    live--
    const key = labelOf(context)
    const n = (counts.get(key) ?? 0) - 1
    if (n <= 0) counts.delete(key)
    else counts.set(key, n)
  }

  // TestClock forks a warning fiber inside `sleep` when a test sleeps without
  // adjusting the clock: marking the sleep marks that fiber as the kit's. The
  // mark also lets the report say "sleep until …" instead of "Latch.await".
  const wrapClock = (clock: TestClock.TestClock): TestClock.TestClock => {
    const wrapped: TestClock.TestClock = {
      currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
      currentTimeMillis: clock.currentTimeMillis,
      currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
      currentTimeNanos: clock.currentTimeNanos,
      monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
      monotonicTimeNanos: clock.monotonicTimeNanos,
      sleep: (duration: Duration.Duration) =>
        Effect.withFiber((fiber) => {
          const record = registry.recordOf(fiber)
          record.sleepUntil = clock.currentTimeMillisUnsafe() + Math.max(0, Duration.toMillis(duration))
          return clock.sleep(duration).pipe(
            Effect.provideService(KitFiber, true),
            Effect.ensuring(Effect.sync(() => (record.sleepUntil = undefined)))
          )
        }),
      adjust: (duration) => clock.adjust(duration),
      setTime: (timestamp) => clock.setTime(timestamp),
      withLive: (effect) => clock.withLive(effect)
    }
    own.add(wrapped)
    return wrapped
  }

  const services = Effect.gen(function*() {
    const outerMetrics = yield* Metric.FiberRuntimeMetrics
    const outerTracer = yield* Tracer.Tracer
    const clock = yield* Clock.Clock
    let context = Context.empty()
    if (outerMetrics === undefined || !own.has(outerMetrics)) {
      const metrics = forwardingMetrics(outerMetrics, onStart, onEnd)
      own.add(metrics)
      context = Context.add(context, Metric.FiberRuntimeMetrics, metrics)
    }
    if (!own.has(outerTracer)) {
      const tracer = registry.tracer(outerTracer)
      own.add(tracer)
      context = Context.add(context, Tracer.Tracer, tracer)
    }
    if (isTestClock(clock) && !own.has(clock)) context = Context.add(context, Clock.Clock, wrapClock(clock))
    return context
  })

  const byLabel = () => Object.fromEntries(counts)
  return {
    track: (effect) =>
      Effect.withFiber((fiber) => {
        callers.add(fiber)
        return Effect.flatMap(services, (context) => Effect.provideContext(effect, context))
      }),
    layer: Layer.effectContext(services),
    live: () => live,
    started: () => started,
    byLabel,
    assertNoLeaks: (options) =>
      Effect.gen(function*() {
        const baseline = options?.baseline ?? 0
        const yields = options?.yields ?? 1_000
        for (let i = 0; i < yields; i++) {
          // `live` drops as other fibers finish while this one yields.
          if (live <= baseline) break
          yield* Effect.yieldNow
        }
        if (live > baseline) {
          const fibers = registry.live()
            .filter((r) => !r.kit && r.fiber !== undefined && !callers.has(r.fiber))
            .map((r) => registry.info(r))
          // Labels set inside a fiber (FiberLabel.set) are only known to the
          // details: count by them when the details cover every live fiber.
          const labels: Record<string, number> = {}
          for (const f of fibers) labels[f.label ?? "unlabeled"] = (labels[f.label ?? "unlabeled"] ?? 0) + 1
          return yield* new LeakError({
            live,
            byLabel: fibers.length === live ? labels : byLabel(),
            fibers,
            forkSites: options?.forkSites ?? false
          })
        }
      })
  }
}
