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
