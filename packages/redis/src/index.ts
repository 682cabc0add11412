/**
 * sluice on Redis: hubs, topics and keyed streams across many processes.
 *
 * - `RedisConnection`: Effect's `Redis` service from `NodeRedis`, with the
 *   settings a fan-out needs (typed start-up error, fail fast while down,
 *   reconnect forever).
 * - `RedisLog`: `Log.Store` on Redis: one stream per topic, one Pub/Sub
 *   subscription per node, epochs in Redis.
 * - `RedisRegistry`: a `Registry` across nodes: one live connection per key
 *   in the cluster, sends from any node, the outbox in Redis.
 * - `RedisResumable`: the coordinator of resumable streams across nodes
 *   (claims, leases on Redis' clock, stop from anywhere, one end).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as RedisConnection from "./RedisConnection.ts"

/** @since 0.1.0 */
export * as RedisLog from "./RedisLog.ts"

/** @since 0.1.0 */
export * as RedisRegistry from "./RedisRegistry.ts"

/** @since 0.2.0 */
export * as RedisResumable from "./RedisResumable.ts"
