/**
 * sluice on `@effect/platform-node`: SSE responses with limits, authorization,
 * compression and fast shutdown, and an SSE client with reconnection.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as SseResponse from "./SseResponse.ts"

/** @since 0.1.0 */
export * as SseServer from "./SseServer.ts"

/** @since 0.1.0 */
export * as SseAuth from "./SseAuth.ts"

/** @since 0.1.0 */
export * as SseClient from "./SseClient.ts"

/** @since 0.2.0 */
export * as SocketGuard from "./SocketGuard.ts"

/** @since 0.2.0 */
export * as SseResumable from "./SseResumable.ts"
