/**
 * Counts live fibers, so a test can prove that a stream left nothing behind.
 *
 * Effect 4 has no fiber registry and no `Supervisor`; instead the runtime
 * calls the `Metric.FiberRuntimeMetrics` service for every fiber started and
 * ended while that service is in the context (forks inherit it; so do HTTP
 * request fibers, stream producers and layers built inside). The tracker
 * provides such a service and keeps a count per label: sluice names each fiber
 * it forks (`sluice/connection/c3/writer`, …), so a failed assertion says what
 * is still alive.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { FiberLabel } from "../internal/fiberLabel.ts"

/**
 * Fibers were still alive when the tracker expected none.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeakError extends Data.TaggedError("LeakError")<{
  readonly live: number
  readonly byLabel: Readonly<Record<string, number>>
}> {
  override get message(): string {
    const list = Object.entries(this.byLabel).map(([label, n]) => `${label} x${n}`).join(", ")
    return `${this.live} fiber(s) still alive: ${list}`
  }
}

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
  /** Live fibers per label (fibers forked outside sluice are `unlabeled`). */
  readonly byLabel: () => Readonly<Record<string, number>>
  /**
   * Succeeds once at most `baseline` fibers are alive, letting fibers that
   * are finishing run first (up to `yields` scheduler turns, no real time);
   * otherwise fails with {@link LeakError} listing what is alive.
   */
  readonly assertNoLeaks: (options?: { readonly baseline?: number; readonly yields?: number }) => Effect.Effect<
    void,
    LeakError
  >
}

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
  const counts = new Map<string, number>()
  let live = 0
  let started = 0
  const label = (context: Context.Context<never>) => Context.get(context, FiberLabel)
  const service: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: (context) => {
      live++
      started++
      const key = label(context)
      counts.set(key, (counts.get(key) ?? 0) + 1)
    },
    recordFiberEnd: (context) => {
      live--
      const key = label(context)
      const n = (counts.get(key) ?? 0) - 1
      if (n <= 0) counts.delete(key)
      else counts.set(key, n)
    }
  }
  const byLabel = () => Object.fromEntries(counts)
  return {
    track: (effect) => Effect.provideService(effect, Metric.FiberRuntimeMetrics, service),
    layer: Layer.succeed(Metric.FiberRuntimeMetrics, service),
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
        if (live > baseline) return yield* new LeakError({ live, byLabel: byLabel() })
      })
  }
}
