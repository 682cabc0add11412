/**
 * Names for fibers, so the kit's reports say *which* fiber is stuck or
 * leaked, and where it was forked.
 *
 * A label lives in the fiber's context: `FiberLabel.set("producer")` around an
 * effect labels the fiber that runs it from there on, and every fiber forked
 * inside inherits the label. sluice labels its own fibers the same way
 * (`sluice/connection/c3/writer`, `sluice/ticker`).
 *
 * Guarantees:
 * - labels cost one context entry; they change nothing about how fibers run;
 * - `set` records the source line it was called from, which bubbles and leak
 *   trackers report as the fork site of the fibers it labels.
 *
 * @since 0.2.0
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import { FiberLabel as LabelReference } from "../internal/fiberLabel.ts"
import { capture, LabelSite, lastLabel } from "./internal/site.ts"

/**
 * The context entry holding a fiber's label (`"unlabeled"` when none is set).
 *
 * @since 0.2.0
 * @category references
 */
export const reference: Context.Reference<string> = LabelReference

/**
 * Labels the fiber running `self` (while it runs `self`) and every fiber
 * forked inside it. Use it on the effect you fork:
 * `Effect.forkChild(worker.pipe(FiberLabel.set("worker")))`.
 *
 * The call site is recorded as the fork site of the labelled fibers.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FiberLabel } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const worker = yield* Effect.forkChild(Effect.never.pipe(FiberLabel.set("worker")))
 *   return worker
 * })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const set: {
  (label: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, label: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, label: string): Effect.Effect<A, E, R> => {
  const site = capture()
  return Effect.withFiber((fiber) => {
    lastLabel.set(fiber, label)
    return self.pipe(Effect.provideService(LabelReference, label), Effect.provideService(LabelSite, site))
  })
})

/**
 * The label of `fiber`, or `undefined` when it has none.
 *
 * @example
 * ```ts
 * import { Effect, Fiber } from "effect"
 * import { FiberLabel } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const fiber = yield* Effect.forkChild(FiberLabel.set(Effect.never, "pinger"))
 *   return FiberLabel.get(fiber) // "pinger"
 * })
 * ```
 *
 * @since 0.2.0
 * @category getters
 */
export const get = (fiber: Fiber.Fiber<unknown, unknown>): string | undefined => {
  const label = fiber.getRef(LabelReference)
  return label === "unlabeled" ? undefined : label
}

/**
 * The label of the fiber running this effect, or `undefined`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FiberLabel } from "@sluice/core/testing"
 *
 * const program = FiberLabel.set(FiberLabel.current, "worker") // Effect<"worker" | undefined>
 * ```
 *
 * @since 0.2.0
 * @category getters
 */
export const current: Effect.Effect<string | undefined> = Effect.map(
  LabelReference,
  (label) => label === "unlabeled" ? undefined : label
)
