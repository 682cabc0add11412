/**
 * The sluice test kit: deterministic tests of streaming code.
 *
 * - `TestSink`: a sink that records writes and injects faults (fail after N
 *   writes, hang, slow writes).
 * - `TestProducer`: instrumented producers (`aggressive`, `oscillating`, `failing`).
 * - `LeakTracker`: live-fiber counting with labels, and an assertion that lists
 *   what is still alive.
 * - `TestTime`: running and advancing `TestClock` without the `adjust` trap.
 * - `SeededScheduler`: reproducible interleavings chosen by a seed.
 *
 * @since 0.1.0
 */

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
