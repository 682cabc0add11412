/**
 * Keyed mode's engine: one live stream per key, addressed by key or by the
 * opaque token the gateway gave the connection.
 *
 * It is sluice's `Registry` (replacement, identity-checked cleanup, bounded
 * outboxes for keys nobody listens to, terminal sends) plus a table of
 * tokens. A token names one connection: once that connection has ended or
 * been replaced, the token is unknown, which is how an application learns
 * that a client left (a send by token answers 404) and tells a stale
 * disconnect callback of a replaced connection from the current one.
 *
 * Two implementations: in memory ({@link makeMemory}, one process) and on
 * Redis ({@link makeRedis}, {@link layerRedis}: several gateway processes
 * act as one). On Redis, keys are `RedisRegistry`'s (one live connection
 * per key across processes, outboxes and terminal events in Redis) and a
 * token is resolved across processes: the key's state in Redis holds its
 * live connection's token and a lease its process renews, and an entry
 * `token → key` lets any process find the key. A send or close by token
 * posted to any process reaches the connection on whichever process holds
 * it, and only while the token is that connection's: once it ended, was
 * replaced or closed, or its process died (the lease ran out), the token is
 * unknown everywhere.
 *
 * The disconnect callback is the job of the process that held the
 * connection: `connect`'s `onEnd` runs there, once, after the token became
 * unknown on every process (so an application that sends in answer to the
 * callback gets a 404, never a delivery to nobody).
 *
 * @since 0.1.0
 */
import type { Connection, Registry, SseEvent } from "@sluice/core"
import type { RedisConnection, RedisRegistry } from "@sluice/redis"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/keyed.ts"
import * as redis from "./internal/keyedRedis.ts"

/**
 * A send or close addressed to a token whose connection has ended, was
 * replaced, or never existed.
 *
 * @since 0.1.0
 * @category errors
 */
export const UnknownTokenError: typeof internal.UnknownTokenError = internal.UnknownTokenError

/**
 * @since 0.1.0
 * @category errors
 */
export type UnknownTokenError = internal.UnknownTokenError

/**
 * Where a send goes: a key (its live connection, or its outbox) or a token
 * (that connection only).
 *
 * @since 0.1.0
 * @category models
 */
export type Target = { readonly _tag: "Key"; readonly key: string } | { readonly _tag: "Token"; readonly token: string }

/**
 * What a close did: `closed` (a live connection got the close frames and
 * ends) or `not_connected` (no live connection for the key; its waiting
 * events were forgotten).
 *
 * @since 0.1.0
 * @category models
 */
export type CloseResult = "closed" | "not_connected"

/**
 * Options of {@link Service.connect}: `Registry.connect`'s, plus the end.
 *
 * @since 0.2.0
 * @category models
 */
export interface ConnectOptions extends Registry.ConnectOptions {
  /**
   * Called once, on this process, after the connection ended and its token
   * became unknown on every process: where the disconnect callback is sent
   * from. Must not throw.
   */
  readonly onEnd?: ((outcome: Connection.Outcome) => void) | undefined
}

/**
 * The keyed service's operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Starts the connection for `key` in the current scope under `token`,
   * replacing the key's live connection (see `Registry.connect`).
   */
  readonly connect: (
    key: string,
    token: string,
    options: ConnectOptions
  ) => Effect.Effect<
    Connection.Connection,
    Registry.TooManyKeysError | Registry.RegistryUnavailableError,
    Scope.Scope
  >
  /**
   * Sends an event; `terminal` makes it the key's last (the stream closes
   * with that reason, later sends to the key fail with `KeyClosedError`).
   */
  readonly send: (
    target: Target,
    event: SseEvent.Frame,
    options?: Registry.SendOptions
  ) => Effect.Effect<Registry.SendResult, Registry.SendError | UnknownTokenError>
  /** Ends the target's live connection with the close frames for `reason`; the key stays open. */
  readonly close: (
    target: Target,
    reason: string
  ) => Effect.Effect<CloseResult, UnknownTokenError | Registry.RegistryUnavailableError>
  /** Whether `token` names a live, current connection of this process. */
  readonly isCurrent: (token: string) => boolean
  readonly stats: () => Registry.Stats & { readonly tokens: number }
}

/**
 * The keyed service.
 *
 * @since 0.1.0
 * @category services
 */
export class Keyed extends Context.Service<Keyed, Service>()("@sluice/gateway/Keyed") {}

/**
 * Makes the in-memory keyed service in the current scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEvent } from "@sluice/core"
 * import { Keyed } from "@sluice/gateway"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const keyed = yield* Keyed.makeMemory({ pending: { capacity: 100 } })
 *   yield* keyed.send({ _tag: "Key", key: "task-1" }, SseEvent.make({ event: "progress", data: "{}" })) // "pending"
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (options?: Registry.Options) => Effect.Effect<Service, never, Scope.Scope> = internal.make

/**
 * The in-memory keyed service as a layer (one process).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEvent } from "@sluice/core"
 * import { Keyed } from "@sluice/gateway"
 *
 * const program = Effect.gen(function*() {
 *   const keyed = yield* Keyed.Keyed
 *   return yield* keyed.send({ _tag: "Key", key: "42" }, SseEvent.make({ data: "queued" }))
 * }).pipe(Effect.provide(Keyed.layerMemory({ pending: { capacity: 64 } })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Registry.Options = {}): Layer.Layer<Keyed> =>
  Layer.effect(Keyed, makeMemory(options))

/**
 * Settings of the Redis keyed service: `RedisRegistry`'s (prefix, name,
 * lease, outbox bounds, …).
 *
 * @since 0.2.0
 * @category models
 */
export type RedisOptions = RedisRegistry.Options

/**
 * Makes the keyed service on Redis in the current scope (needs Effect's
 * `Redis` service, e.g. `RedisConnection.layer` from `@sluice/redis`).
 * Fails with `RedisUnavailableError` when Redis cannot be reached at start.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { SseEvent } from "@sluice/core"
 * import { Keyed } from "@sluice/gateway"
 * import { RedisConnection } from "@sluice/redis"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const keyed = yield* Keyed.makeRedis({ prefix: "gateway", lease: "10 seconds" })
 *   // from any process: reaches the connection that token names, wherever it is
 *   yield* keyed.send({ _tag: "Token", token: "tok-1" }, SseEvent.make({ data: "hi" }))
 * })).pipe(Effect.provide(RedisConnection.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeRedis: (
  options?: RedisOptions
) => Effect.Effect<Service, RedisConnection.RedisUnavailableError, Redis.Redis | Scope.Scope> = redis.make

/**
 * The keyed service on Redis as a layer (several gateway processes).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerRedis = (
  options: RedisOptions = {}
): Layer.Layer<Keyed, RedisConnection.RedisUnavailableError, Redis.Redis> => Layer.effect(Keyed, makeRedis(options))
