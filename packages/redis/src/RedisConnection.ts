/**
 * The Redis connection sluice runs on: Effect's `Redis` service
 * (`effect/persistence/Redis`) provided by `NodeRedis` from
 * `@effect/platform-node`, with the settings a fan-out across nodes needs.
 *
 * sluice depends only on the `Redis` service tag: provide it from any client
 * you like. This layer is the ready-made one, and it guarantees:
 *
 * - **A clear start**: an unreachable server fails the layer with
 *   {@link RedisUnavailableError} naming the address (no endless retry loop at
 *   start-up).
 * - **Fail fast while down**: commands sent while the connection is being
 *   re-established fail at once (node-redis' offline queue is off) instead of
 *   piling up in memory; sluice turns them into typed errors.
 * - **Come back by itself**: after a successful start the client reconnects
 *   forever, with capped exponential backoff and jitter (also after socket
 *   timeouts, which node-redis would otherwise treat as fatal), and
 *   subscriptions are re-established.
 * - **Bounded**: at most `commandsQueueMaxLength` commands wait for replies
 *   (default 100 000); beyond that commands fail at once.
 *
 * @since 0.1.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redis from "effect/persistence/Redis"
import { describeCause } from "./internal/errors.ts"

/**
 * Redis could not be reached or did not answer: at start-up (the layer
 * fails) or while running (a publish or send fails; nothing was lost
 * silently). `address` names the server when it is known.
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisUnavailableError extends Data.TaggedError("RedisUnavailableError")<{
  /** The server's address (`redis://host:port`), or a description when unknown. */
  readonly address: string
  /** What sluice was doing: `connect`, `publish`, `read`, `send`, `connect key`, … */
  readonly operation: string
  /**
   * `true` when the command may still have been applied (it was sent, then
   * timed out): a publish that failed this way may yet be delivered.
   */
  readonly uncertain: boolean
  readonly cause?: unknown
}> {
  override get message(): string {
    const detail = describeCause(this.cause)
    return `Redis at ${this.address} is unavailable (${this.operation})${detail === "" ? "" : `: ${detail}`}${
      this.uncertain ? "; the command may still have been applied" : ""
    }`
  }
}

/**
 * Options: node-redis client options (`url`, `socket`, `username`, …) plus the
 * pool of reserved connections, as `NodeRedis.layer` takes them.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = NonNullable<Parameters<typeof NodeRedis.layer>[0]>

/**
 * A short name for the server in messages: the URL without credentials, or
 * host and port.
 *
 * @example
 * ```ts
 * import { RedisConnection } from "@sluice/redis"
 *
 * RedisConnection.addressOf({ url: "redis://user:secret@10.0.0.5:6380/2" }) // "redis://10.0.0.5:6380/2": no credentials in messages
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const addressOf = (options: Options): string => {
  if (typeof options.url === "string" && options.url !== "") {
    try {
      const url = new URL(options.url)
      url.username = ""
      url.password = ""
      return url.toString().replace(/\/$/, "")
    } catch {
      return "(an invalid url)"
    }
  }
  const socket = options.socket as { host?: string; port?: number; path?: string } | undefined
  if (socket?.path !== undefined) return socket.path
  return `redis://${socket?.host ?? "localhost"}:${socket?.port ?? 6379}`
}

/**
 * Provides Effect's `Redis` service (and `NodeRedis`) for the lifetime of
 * the layer. Fails with {@link RedisUnavailableError} when the server cannot
 * be reached at start-up.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisConnection, RedisLog } from "@sluice/redis"
 *
 * const Redis = RedisConnection.layer({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" })
 * const Log = RedisLog.layer().pipe(Layer.provide(Redis))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Redis.Redis | NodeRedis.NodeRedis, RedisUnavailableError> => {
  const address = addressOf(options)
  return Layer.unwrap(Effect.sync(() => {
    // Until the first connection succeeds, a failure ends the attempt (a
    // clear error at start-up); afterwards, reconnect forever.
    const state = { started: false }
    const reconnect = (retries: number, cause: Error): number | Error => {
      if (!state.started) return cause
      const jitter = Math.floor(Math.random() * 100)
      return Math.min(50 * 2 ** Math.min(retries, 10), 2_000) + jitter
    }
    const socket = options.socket?.reconnectStrategy === undefined
      ? { ...options.socket, reconnectStrategy: reconnect }
      : options.socket
    const client = NodeRedis.layer({
      disableOfflineQueue: true,
      commandsQueueMaxLength: 100_000,
      ...options,
      socket
    } as Options)
    return Layer.effectContext(
      Layer.build(client).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            state.started = true
          })
        ),
        Effect.mapError((cause) =>
          new RedisUnavailableError({ address, operation: "connect", uncertain: false, cause })
        )
      )
    )
  }))
}
