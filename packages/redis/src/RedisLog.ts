/**
 * Logs on Redis: the record behind hubs and topics, shared by every process
 * that uses the same Redis, so a publish on one node reaches subscribers on
 * all of them and an id handed out by one node resumes on any other.
 *
 * ```text
 *                    ┌─────────────── Redis ───────────────┐
 * append(burst) ────▶│ script: next seqs, XADD <seq>-0 each │──PUBLISH <prefix>:log──▶ every node's one subscription
 *  (one round trip)  │ stream <prefix>:t:{topic}:s (trimmed)│                              │
 *                    │ meta   <prefix>:t:{topic}:m (epoch)  │◀──XRANGE (holes, replay)─── tail ─▶ hub fan-out
 *                    └──────────────────────────────────────┘
 * ```
 *
 * What it guarantees (besides everything `Log` promises):
 * - **One order per topic** across all nodes and publishers: a burst is one
 *   atomic script call that numbers its events, appends them with the
 *   sequence number as the stream entry id, and publishes them.
 * - **No gap, no duplicate on any node**: each node's tail delivers in
 *   sequence order; a jump (a lost message, a reconnection) is filled from
 *   the stream before anything newer; duplicates are dropped.
 * - **No silent starvation**: each node checks its position against Redis
 *   every `positionCheck` and pings its subscription when it is idle; a
 *   subscription that stopped delivering is re-established and the node
 *   catches up from the stream by itself.
 * - **Epochs in Redis**: a topic whose stream was lost (restart without
 *   persistence, eviction, `FLUSHALL`) gets a new epoch; ids of the old one
 *   are answered with `restarted`, so resuming clients get `replay_gap`.
 * - **Bounded**: history by count, bytes and age (stream trimming inside the
 *   append script); at most `maxPending` events wait to be appended per topic;
 *   a tail buffers at most `maxBuffered` events while it fills a hole.
 * - **Typed failures**: while Redis is unreachable, appends and reads fail
 *   with `Log.LogError` naming the address (never a silent drop); the layer
 *   fails at start-up when Redis cannot be reached.
 *
 * @since 0.1.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Hub, Log, OptionCheck } from "@sluice/core"
import type { SseEvent } from "@sluice/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as store from "./internal/store.ts"
import { addressOf, RedisUnavailableError } from "./RedisConnection.ts"

/**
 * Settings of the Redis logs of one process.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prefix of every Redis key and channel. Default `"sluice"`. */
  readonly prefix?: string | undefined
  /**
   * How often each node compares its position with Redis (to catch up on
   * what its subscription missed); `false` for never. Default 1 second.
   */
  readonly positionCheck?: Duration.Input | false | undefined
  /** An idle subscription is pinged after this long and re-established if the ping does not come back. Default 5 seconds. */
  readonly ping?: Duration.Input | undefined
  /** Longest wait for Redis in an append or read. Default 5 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** Events per topic that may wait to be appended. Default 10 000. */
  readonly maxPending?: number | undefined
  /** Events per script call. Default 512. */
  readonly maxBatch?: number | undefined
  /** Script calls in flight per topic (pipelined, run by Redis in order). Default 2. */
  readonly maxInFlight?: number | undefined
  /** Events a tail buffers while it fills a hole. Default 10 000. */
  readonly maxBuffered?: number | undefined
  /**
   * When the keys of a topic nobody uses expire. Default: twice the history's
   * age limit (at least a minute); never for topics without an age limit.
   * `false`: never.
   */
  readonly expireIdle?: Duration.Input | false | undefined
  /** The server's address for error messages. Default: read from `NodeRedis` when it is there. */
  readonly address?: string | undefined
}

const millis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

const positive = (name: string, value: number | undefined, fallback: number): number => {
  OptionCheck.check("RedisLog", `${name} (a finite number, at least 1)`, OptionCheck.atLeast(value, 1), value)
  return value === undefined ? fallback : Math.floor(value)
}

const config = (options: Options, address: string, node: string): store.Config => {
  const expireIdle = options.expireIdle
  return {
    prefix: options.prefix ?? "sluice",
    address,
    node,
    pingMillis: Math.max(1, millis(options.ping ?? "5 seconds")),
    checkMillis: options.positionCheck === false ? 0 : Math.max(1, millis(options.positionCheck ?? "1 second")),
    timeoutMillis: Math.max(1, millis(options.timeout ?? "5 seconds")),
    unavailable: (operation, detail) =>
      new RedisUnavailableError({ address, operation, uncertain: false, cause: detail }),
    maxPending: positive("maxPending", options.maxPending, 10_000),
    maxBatch: positive("maxBatch", options.maxBatch, 512),
    maxInFlight: positive("maxInFlight", options.maxInFlight, 2),
    maxBuffered: positive("maxBuffered", options.maxBuffered, 10_000),
    fillChunk: 1_000,
    expireIdle: expireIdle === false
      ? () => 0
      : expireIdle !== undefined
      ? () => millis(expireIdle)
      : (age) => Number.isFinite(age) ? Math.max(60_000, 2 * age) : 0
  }
}

/**
 * Makes the `Log.Store` of this process in the current scope: its Pub/Sub
 * subscription is in place when it returns (or it fails with
 * `RedisUnavailableError` after `timeout`); closing the scope ends it.
 * Invalid options are a defect naming the option.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisLog } from "@sluice/redis"
 *
 * const program = Effect.gen(function*() {
 *   const logs = yield* RedisLog.make({ prefix: "app" })
 *   const ticker = yield* logs.open("ticker", { maxEvents: 500, maxAge: "10 minutes" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Log.Store["Service"], RedisUnavailableError, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const nodeRedis = yield* Effect.serviceOption(NodeRedis.NodeRedis)
    const address = options.address ??
      (Option.isSome(nodeRedis) ? addressOf(nodeRedis.value.client.options as never) : "the Redis service")
    const node = Math.floor((yield* Random.next) * 36 ** 10).toString(36)
    const made = yield* store.make(redis, config(options, address, node))
    return Log.Store.of({ open: made.open })
  })

/**
 * Provides `Log.Store` on Redis: every `Topics` made with it keeps its
 * topics in Redis. Needs Effect's `Redis` service (for example
 * `RedisConnection.layer`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisConnection, RedisLog } from "@sluice/redis"
 *
 * const Logs = RedisLog.layer({ prefix: "app" }).pipe(
 *   Layer.provide(RedisConnection.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Log.Store, RedisUnavailableError, Redis.Redis> =>
  Layer.effect(Log.Store, make(options))

/**
 * Options of {@link hub}: a hub's, without the log and the epoch (the log's
 * epoch lives in Redis); `history` bounds the topic's stream.
 *
 * @since 0.1.0
 * @category models
 */
export type HubOptions = Omit<Hub.Options, "log" | "epoch">

/**
 * A hub over the log `name` of the `Log.Store` in context (for example
 * {@link layer}): every process that makes the hub for the same name shares
 * it. The log is released when the scope closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 * import { RedisLog } from "@sluice/redis"
 *
 * const program = Effect.gen(function*() {
 *   const prices = yield* RedisLog.hub("prices", { history: { maxEvents: 1000, maxAge: "5 minutes" } })
 *   yield* Hub.publishJson(prices, { symbol: "ACME", price: 42 }, { event: "price" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const hub = (
  name: string,
  options: HubOptions = {}
): Effect.Effect<Hub.Hub, Log.LogError | SseEvent.InvalidEventError, Log.Store | Scope.Scope> =>
  Effect.gen(function*() {
    const logs = yield* Log.Store
    const { history, ...rest } = options
    const log = yield* logs.open(name, history === false ? { maxEvents: 0 } : history)
    return yield* Hub.make({ ...rest, log })
  })
