/**
 * sluice core: the SSE wire format and the actor runtime that streams it.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as SseEvent from "./SseEvent.ts"

/** @since 0.1.0 */
export * as SseEncoder from "./SseEncoder.ts"

/** @since 0.1.0 */
export * as SseParser from "./SseParser.ts"

/** @since 0.1.0 */
export * as Sink from "./Sink.ts"

/** @since 0.1.0 */
export * as Connection from "./Connection.ts"

/** @since 0.2.0 */
export * as Log from "./Log.ts"

/** @since 0.1.0 */
export * as Hub from "./Hub.ts"

/** @since 0.1.0 */
export * as Topics from "./Topics.ts"

/** @since 0.1.0 */
export * as Registry from "./Registry.ts"

/** @since 0.2.0 */
export * as Resumable from "./Resumable.ts"

/** @since 0.2.0 */
export * as ResumableCoordinator from "./ResumableCoordinator.ts"

/** @since 0.2.0 */
export * as OptionCheck from "./OptionCheck.ts"
