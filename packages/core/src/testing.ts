/**
 * The sluice test kit: deterministic tests of concurrent Effect code, and of
 * streaming code in particular.
 *
 * - `Bubble`: run a program on its own scheduler and virtual clock; deadlocks
 *   and leaked fibers fail the run with typed errors naming each fiber.
 * - `Race`: explore many interleavings of a program (random with
 *   preemption, PCT, bounded exhaustive search), with printable, replayable,
 *   shrunk schedules and a determinism check.
 * - `Faults`: seeded faults for queues and streams (drop, duplicate, stall,
 *   fail, interrupt at the k-th element).
 * - `FiberLabel`, `LiveFiber`: names for fibers, and how reports describe them.
 * - `TestSink`: a sink that records writes and injects faults (fail after N
 *   writes, hang, slow writes).
 * - `TestProducer`: instrumented producers (`aggressive`, `oscillating`, `failing`).
 * - `LeakTracker`: live-fiber counting with labels, and an assertion that lists
 *   what is still alive and what it waits on.
 * - `TestTime`: running and advancing `TestClock` without the `adjust` trap.
 * - `SeededScheduler`: reproducible interleavings chosen by a seed.
 *
 * @since 0.1.0
 */

/** @since 0.2.0 */
export * as Bubble from "./testing/Bubble.ts"

/** @since 0.2.0 */
export * as Race from "./testing/Race.ts"

/** @since 0.2.0 */
export * as Faults from "./testing/Faults.ts"

/** @since 0.2.0 */
export * as FiberLabel from "./testing/FiberLabel.ts"

/** @since 0.2.0 */
export * as LiveFiber from "./testing/LiveFiber.ts"

/** @since 0.1.0 */
export * as TestSink from "./testing/TestSink.ts"

/** @since 0.1.0 */
export * as TestProducer from "./testing/TestProducer.ts"

/** @since 0.1.0 */
export * as LeakTracker from "./testing/LeakTracker.ts"

/** @since 0.1.0 */
export * as TestTime from "./testing/TestTime.ts"

/** @since 0.1.0 */
export { SeededScheduler } from "./testing/SeededScheduler.ts"
