/**
 * Names for the fibers sluice forks: a `FiberLabel` in each forked fiber's
 * context, so that the test kit's leak tracker and reports say what is still
 * alive (`sluice/connection/c1/writer`), not only how many.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * A name carried in the context of every fiber sluice forks, so the test kit's
 * leak tracker can say *what* is still alive, not only how many.
 *
 * @internal
 */
export const FiberLabel = Context.Reference<string>("@sluice/core/FiberLabel", { defaultValue: () => "unlabeled" })

/**
 * Forks `effect` into `scope` with `label` in the new fiber's context.
 *
 * @internal
 */
export const forkLabelled = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  scope: Scope.Scope,
  label: string
) => Effect.provideService(Effect.forkIn(effect, scope), FiberLabel, label)
