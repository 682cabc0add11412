/**
 * sluice gateway: a standalone SSE server that any backend (Python, Go,
 * Java…) drives over HTTP, in keyed mode (callbacks and `/internal/send`) and
 * topic mode (`/publish`, `/subscribe` with JWTs). Run it with the
 * `sluice-gateway` executable, or embed it with {@link Gateway.layer}.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Config from "./Config.ts"

/** @since 0.1.0 */
export * as Gateway from "./Gateway.ts"

/** @since 0.1.0 */
export * as Keyed from "./Keyed.ts"

/** @since 0.1.0 */
export * as Feed from "./Feed.ts"

/** @since 0.1.0 */
export * as Callbacks from "./Callbacks.ts"

/** @since 0.1.0 */
export * as Jwt from "./Jwt.ts"
