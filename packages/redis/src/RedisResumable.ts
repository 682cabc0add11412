/**
 * Resumable streams across processes: a `ResumableCoordinator.Coordinator`
 * in Redis. With it and a `Log.Store` on the same Redis (`RedisLog`), a
 * stream started on one node is attached to, resumed and stopped from any
 * other, and clients on other nodes learn within the lease that the node
 * running the producer died.
 *
 * ```text
 *  node A (owner)                         Redis                               node B (clients)
 *  start ──claim (script)──────────▶ <prefix>:r:{id} running, owner A ◀──get / touch──── watcher
 *  every lease/4 ──renew (script)──▶ lease until = TIME + lease        ◀──requestStop─── stop(id)
 *  producer ends ──finish (script)─▶ ended, end (once) ──PUBLISH <prefix>:r──▶ every node's listeners
 *  kill -9 A: no renewal ─────────▶ lease runs out on Redis' clock ◀──finish(producer_lost)── B's watcher
 * ```
 *
 * What it guarantees (the coordinator seam's promises, on Redis):
 * - **One claim, one end**: each operation is one script on the stream's
 *   hash (compare and set): of concurrent claims exactly one gets
 *   `Claimed`; `finish` moves a running stream to its end once, and every
 *   later `finish` is refused with the end that won.
 * - **Leases on Redis' clock**: lease expiry, `idleMillis` and every stored
 *   time come from `TIME` in the script, never from a node's clock; a lease
 *   that ran out cannot be renewed, and another node's `finish` is refused
 *   while it runs.
 * - **Bounded life**: the hash expires in Redis `ttlMillis` after the claim
 *   (a stream without a lifetime: a lease plus its retention after the
 *   owner's last renewal), its retention after the end, or when removed.
 * - **Deadlines**: every call answers within `timeout` or fails with
 *   `CoordinatorError` naming the operation, the stream and the address.
 * - **Notifications**: stop requests, ends and removals are published once
 *   on one channel; each process holds one subscription (pinged, and
 *   re-established when it stops delivering; after a new subscription the
 *   watched streams are read again). A lost message only costs time: the
 *   collection also polls.
 *
 * Records (the streams' events) are not kept here: provide
 * `RedisLog.layer` on the same Redis as the `Log.Store`.
 *
 * Metrics: `sluice_redis_resumable_notifications_total`,
 * `sluice_redis_resubscriptions_total`.
 *
 * @since 0.2.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { ResumableCoordinator } from "@sluice/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as coordinator from "./internal/coordinator.ts"
import { addressOf, RedisUnavailableError } from "./RedisConnection.ts"

/**
 * Settings of the coordinator of one process. Durations that are not
 * durations are a defect of {@link make}, naming the option.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Prefix of every Redis key and channel. Default `"sluice"` (as `RedisLog`'s). */
  readonly prefix?: string | undefined
  /**
   * Longest wait for Redis in one operation. Default 2 seconds. Keep it
   * below a quarter of the collections' lease: a renewal that waits longer
   * counts as missed.
   */
  readonly timeout?: Duration.Input | undefined
  /** An idle subscription is pinged after this long and re-established if the ping does not come back. Default 5 seconds. */
  readonly ping?: Duration.Input | undefined
  /** The server's address for error messages. Default: read from `NodeRedis` when it is there. */
  readonly address?: string | undefined
}

const millis = (name: string, input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  let ms = Number.NaN
  try {
    ms = Duration.toMillis(Duration.fromInputUnsafe(input))
  } catch {
    // reported below, naming the option
  }
  if (!(ms >= 1) || !Number.isFinite(ms)) {
    throw new RangeError(`RedisResumable: ${name} must be a finite duration of at least 1 ms (got ${String(input)})`)
  }
  return ms
}

/**
 * Makes this process's coordinator in the current scope: its subscription
 * is in place when it returns (or it fails with `RedisUnavailableError`
 * after `timeout`); closing the scope ends it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisResumable } from "@sluice/redis"
 *
 * const program = Effect.gen(function*() {
 *   const coordinator = yield* RedisResumable.make({ prefix: "app" })
 *   const state = yield* coordinator.get("answer-1") // undefined: never started
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<ResumableCoordinator.Coordinator["Service"], RedisUnavailableError, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const timeoutMillis = millis("timeout", options.timeout, 2_000)
    const pingMillis = millis("ping", options.ping, 5_000)
    const redis = yield* Redis.Redis
    const nodeRedis = yield* Effect.serviceOption(NodeRedis.NodeRedis)
    const address = options.address ??
      (Option.isSome(nodeRedis) ? addressOf(nodeRedis.value.client.options as never) : "the Redis service")
    const node = Math.floor((yield* Random.next) * 36 ** 10).toString(36)
    return yield* coordinator.make(redis, {
      prefix: options.prefix ?? "sluice",
      address,
      node,
      timeoutMillis,
      pingMillis,
      unavailable: (operation, detail) =>
        new RedisUnavailableError({ address, operation, uncertain: false, cause: detail })
    })
  })

/**
 * Provides the coordinator on Redis: every `Resumable` collection made with
 * it (and a `Log.Store` on the same Redis) acts as a node of one cluster.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Stream } from "effect"
 * import { Resumable, SseEvent } from "@sluice/core"
 * import { RedisConnection, RedisLog, RedisResumable } from "@sluice/redis"
 *
 * const Cluster = Layer.mergeAll(RedisResumable.layer(), RedisLog.layer()).pipe(
 *   Layer.provide(RedisConnection.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const answers = yield* Resumable.make({ lease: "10 seconds" })
 *   yield* Resumable.start(answers, "answer-1", Stream.make(SseEvent.make({ event: "token", data: "hi" })))
 * })).pipe(Effect.provide(Cluster))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<ResumableCoordinator.Coordinator, RedisUnavailableError, Redis.Redis> =>
  Layer.effect(ResumableCoordinator.Coordinator, make(options))
