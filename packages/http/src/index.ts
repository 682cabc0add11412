/**
 * sluice on `@effect/platform-node`: SSE responses with limits, authorization,
 * compression and fast shutdown.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as SseResponse from "./SseResponse.ts"

/** @since 0.1.0 */
export * as SseServer from "./SseServer.ts"

/** @since 0.1.0 */
export * as SseAuth from "./SseAuth.ts"
