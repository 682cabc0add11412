/**
 * Keyed streams across processes: a `Registry` whose keys live in Redis, so
 * a task running on node A streams to its client on node B, and a client
 * that reconnects to any node gets what waited for it.
 *
 * ```text
 *  node A: send(k, e) ──script──▶ Redis: outbox of k (bounded, ttl) ──PUBLISH──▶ owner's node B ─▶ k's connection
 *  node C: connect(k) ──claim───▶ Redis: owner C, generation g+1 ──"replaced"──▶ B closes k's connection
 * ```
 *
 * It is a `Registry` (made with `Registry.fromBackend`): `Registry.send`,
 * `Registry.connect`, `Registry.disconnect` and `SseResponse.keyed` work with
 * it unchanged, with the same guarantees as in one process:
 *
 * - **One live connection per key in the cluster**: a connection for a key
 *   on any node replaces the one on another; the replaced client gets its
 *   close frames for `replaced`. Ownership is recorded in Redis with a
 *   generation that only grows, and every cleanup is checked against it: a
 *   stale cleanup can never remove its successor's registration, whichever
 *   order the race takes.
 * - **Send from anywhere**: `send(key, event)` reaches the node holding the
 *   key's connection. With nobody connected, events wait in a bounded outbox
 *   in Redis (capacity, time-to-live, what to do when full) and arrive in order,
 *   before live events, when a client connects on any node.
 * - **Nothing lost without a trace**: an event stays in the outbox until a
 *   connection took it, so a node that dies (`kill -9`) with events on their
 *   way loses none: the next connection gets them (at least once: events the
 *   dead node's client had already received may come again). A replacement
 *   waits (up to `handover`) for the previous node to say what its connection
 *   took, so a normal replacement delivers each event once. Drops by overflow
 *   or expiry are counted.
 * - **Terminal sends across nodes**: `send(k, e, { terminal })` delivers `e`,
 *   then the close frames, wherever the connection is; later sends fail with
 *   `KeyClosedError`; a client that connects later gets `e` and the close at
 *   once (while the key is remembered).
 * - **Typed failures**: while Redis is unreachable, sends, connects and
 *   disconnects fail with `RegistryUnavailableError` naming the address
 *   (keyed routes answer 503 with `Retry-After`).
 * - **Tokens** ({@link makeWithTokens}): a connection may carry an opaque
 *   token, and a send or disconnect addressed to the token from any node
 *   reaches that connection only. The key's state in Redis holds the live
 *   connection's token and its registration's lease (renewed with the
 *   position checks); an entry `token → key` lets any node find the key.
 *   Once the connection ended, was replaced or closed by a terminal event,
 *   or its node died (the lease ran out), the token is unknown
 *   ({@link UnknownTokenError}) and nothing is sent.
 *
 * `isLive`, `pendingCount` and `stats` describe this node.
 *
 * @since 0.1.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { OptionCheck, Registry } from "@sluice/core"
import type { Connection, SseEvent } from "@sluice/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as keyed from "./internal/keyed.ts"
import { addressOf, RedisUnavailableError } from "./RedisConnection.ts"

/**
 * Settings: those of `Registry.make` (the outbox is in Redis) but the byte
 * budget across keys (each key's outbox is bounded by `pending.capacity` and
 * `pending.ttl`), plus where and how the registry lives in Redis.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<Registry.Options, "budget"> {
  /** Prefix of every Redis key and channel. Default `"sluice"`. */
  readonly prefix?: string | undefined
  /** This registry's name, for several registries in one Redis. Default `"registry"`. */
  readonly name?: string | undefined
  /**
   * How long a live connection's registration outlives its node's last
   * renewal (a node that died stops renewing; its connections' tokens are
   * unknown once it has run out). Default 30 seconds.
   */
  readonly lease?: Duration.Input | undefined
  /**
   * How often each node renews its connections' registrations and checks
   * their position (catching up on events whose message was lost); `false`
   * for never. Default 2 seconds.
   */
  readonly positionCheck?: Duration.Input | false | undefined
  /** Longest wait for the previous node to hand a replaced key over. Default 2 seconds. */
  readonly handover?: Duration.Input | undefined
  /** An idle subscription is pinged after this long. Default 5 seconds. */
  readonly ping?: Duration.Input | undefined
  /** Longest wait for Redis in a send, connect or disconnect. Default 5 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** The server's address for error messages. Default: read from `NodeRedis` when it is there. */
  readonly address?: string | undefined
}

const millis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

const config = (options: Options, address: string, node: string): keyed.Config => {
  const capacity = options.pending?.capacity
  const { atLeast, check } = OptionCheck
  check("RedisRegistry", "pending.capacity (a finite number, at least 1)", atLeast(capacity, 1), capacity)
  const maxKeys = options.maxKeys
  check("RedisRegistry", "maxKeys (a number, at least 1)", atLeast(maxKeys, 1, false), maxKeys)
  const ttl = millis(options.pending?.ttl ?? "5 minutes")
  const lease = Math.max(1_000, millis(options.lease ?? "30 seconds"))
  const ttlMillis = Number.isFinite(ttl) ? ttl : 0
  return {
    prefix: `${options.prefix ?? "sluice"}:${options.name ?? "registry"}`,
    address,
    node,
    pingMillis: Math.max(1, millis(options.ping ?? "5 seconds")),
    renewMillis: options.positionCheck === false
      ? 0
      : Math.max(1, Math.min(millis(options.positionCheck ?? "2 seconds"), lease / 3)),
    timeoutMillis: Math.max(1, millis(options.timeout ?? "5 seconds")),
    unavailable: (operation, detail) =>
      new RedisUnavailableError({ address, operation, uncertain: false, cause: detail }),
    handoverMillis: Math.max(0, millis(options.handover ?? "2 seconds")),
    limits: {
      capacity: Math.floor(capacity ?? 256),
      ttlMillis,
      overflow: options.pending?.strategy ?? "sliding",
      keepMillis: Math.max(lease, ttlMillis),
      leaseMillis: lease
    },
    maxKeys: maxKeys ?? 100_000,
    exists: options.exists
  }
}

/**
 * Makes this node's side of the registry in the current scope (its Pub/Sub
 * subscription is in place when it returns, or it fails with
 * `RedisUnavailableError` after `timeout`; closing the scope ends it).
 * Invalid options are a defect naming the option.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry, SseEvent } from "@sluice/core"
 * import { RedisRegistry } from "@sluice/redis"
 *
 * const program = Effect.gen(function*() {
 *   const tasks = yield* RedisRegistry.make({ name: "tasks", pending: { capacity: 100, ttl: "10 minutes" } })
 *   // any node: reaches the task's stream wherever its client is connected
 *   yield* Registry.send(tasks, "task-42", SseEvent.make({ event: "progress", data: "10" }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Registry.Registry, RedisUnavailableError, Redis.Redis | Scope.Scope> =>
  Effect.map(makeBackend(options), Registry.fromBackend)

const makeBackend = (options: Options) =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const nodeRedis = yield* Effect.serviceOption(NodeRedis.NodeRedis)
    const address = options.address ??
      (Option.isSome(nodeRedis) ? addressOf(nodeRedis.value.client.options as never) : "the Redis service")
    const node = Math.floor((yield* Random.next) * 36 ** 10).toString(36)
    return yield* keyed.make(redis, config(options, address, node))
  })

/**
 * A send or disconnect addressed to a token that names no live connection:
 * it ended, was replaced, was closed by a terminal event, its node died
 * (its registration's lease ran out), or it never existed. Nothing was sent.
 *
 * @since 0.2.0
 * @category errors
 */
export const UnknownTokenError: typeof keyed.UnknownTokenError = keyed.UnknownTokenError

/**
 * @since 0.2.0
 * @category errors
 */
export type UnknownTokenError = keyed.UnknownTokenError

/**
 * Options of {@link WithTokens.connect}: `Registry.connect`'s, plus a
 * callback for the end.
 *
 * @since 0.2.0
 * @category models
 */
export interface ConnectOptions extends Registry.ConnectOptions {
  /**
   * Called once after the connection ended, when its token is unknown on
   * every node (Redis no longer holds its registration, or the release was
   * given up after retries): the moment to tell an application that the
   * client left, so that a send it makes in answer is refused. Must not
   * throw.
   */
  readonly onReleased?: ((outcome: Connection.Outcome) => void) | undefined
}

/**
 * A Redis registry whose connections can carry tokens: opaque names of one
 * connection, addressable from any node (the gateway's tokens).
 *
 * @since 0.2.0
 * @category models
 */
export interface WithTokens {
  /** The registry itself: `Registry.send`, `Registry.connect`, … by key. */
  readonly registry: Registry.Registry
  /**
   * `Registry.connect` for a connection named by `token` (unique, hard to
   * guess: the caller makes it). The token is known to every node once
   * this succeeds.
   */
  readonly connect: (
    key: string,
    token: string,
    options: ConnectOptions
  ) => Effect.Effect<Connection.Connection, Registry.ConnectError, Scope.Scope>
  /** Sends to the connection `token` names, wherever it is; {@link UnknownTokenError} if it is not live. */
  readonly send: (
    token: string,
    event: SseEvent.Frame,
    options?: Registry.SendOptions
  ) => Effect.Effect<Registry.SendResult, Registry.SendError | UnknownTokenError>
  /**
   * Ends the connection `token` names with the close frames for `reason`
   * and forgets its key's waiting events (as `Registry.disconnect`);
   * {@link UnknownTokenError} if it is not live.
   */
  readonly disconnect: (
    token: string,
    reason: string
  ) => Effect.Effect<boolean, Registry.RegistryUnavailableError | UnknownTokenError>
  /** The key of `token` when its live connection is on this node. */
  readonly localKey: (token: string) => string | undefined
}

/**
 * {@link make}, with connections that carry tokens: what a gateway needs
 * when the client is connected to one process and the application posts to
 * another by the connection's token.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEvent } from "@sluice/core"
 * import { RedisRegistry } from "@sluice/redis"
 *
 * const program = Effect.gen(function*() {
 *   const tasks = yield* RedisRegistry.makeWithTokens({ name: "tasks" })
 *   // any node: only the connection that token names gets it
 *   const sent = yield* tasks.send("tok-3f9a", SseEvent.make({ event: "progress", data: "10" })).pipe(
 *     Effect.catchTag("UnknownTokenError", () => Effect.succeed("gone" as const))
 *   )
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeWithTokens = (
  options: Options = {}
): Effect.Effect<WithTokens, RedisUnavailableError, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const backend = yield* makeBackend(options)
    return {
      registry: Registry.fromBackend(backend),
      connect: (key, token, { onReleased, ...connectOptions }) =>
        backend.connectWith(key, token, connectOptions, onReleased),
      send: (token, event, sendOptions = {}) => backend.sendToken(token, event, sendOptions),
      disconnect: backend.disconnectToken,
      localKey: backend.localKey
    }
  })
