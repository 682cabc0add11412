/**
 * How the kit describes a live fiber in its reports (`DeadlockError`,
 * `LeakError`, `StepLimitError`): its number, label, what it waits on and,
 * when known, where it was forked.
 *
 * What a fiber waits on is read from the callback it suspended in, so it
 * names effect's own primitives exactly (`Deferred.await`, `Queue.take`,
 * `Queue.offer`, `Latch.await`, `Semaphore.take`, `Fiber.join`, `PubSub`,
 * `Pool`, sleeps on the bubble's clock); any other `Effect.callback` is shown
 * as `Callback` with an excerpt of its source, and promises, real timers and
 * waits marked with `Bubble.external` as `External`.
 *
 * @since 0.2.0
 */
import type * as Errors from "./internal/errors.ts"
import * as Waits from "./internal/waits.ts"

/**
 * A live fiber in a report: `id` (its number in the bubble, `#3`), `fiberId`
 * (effect's id), `label`, `waitingOn`, `forkSite` and `parent`.
 *
 * @since 0.2.0
 * @category models
 */
export type LiveFiber = Errors.LiveFiber

/**
 * What a live fiber is doing: running, ready to run, or what it waits on.
 *
 * @since 0.2.0
 * @category models
 */
export type Wait = Waits.Wait

/**
 * A short description of a wait: `Queue.offer (queue full)`,
 * `Deferred.await`, `sleep until 2000 ms`.
 *
 * @example
 * ```ts
 * import { LiveFiber } from "@sluice/core/testing"
 *
 * const text = (fiber: LiveFiber.LiveFiber) => LiveFiber.describe(fiber.waitingOn)
 * ```
 *
 * @since 0.2.0
 * @category formatting
 */
export const describe: (wait: Wait) => string = Waits.describe

/**
 * Whether something outside the fibers of a bubble (a promise, a real timer,
 * a wait marked with `Bubble.external`) is expected to end the wait.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isExternal: (wait: Wait) => boolean = Waits.isExternal
