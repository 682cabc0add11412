/**
 * The gateway as a `Layer`: an HTTP server (HTTP/1.1 and h2c on one port)
 * with the keyed stream routes, `/internal/send`, `/publish`, `/subscribe`,
 * `/health` and `/metrics`, on the {@link Keyed} and {@link Feed} services
 * (in memory, or on Redis with `REDIS_URL`: see {@link engines}), with
 * sluice's limits and graceful shutdown.
 *
 * ```text
 * client ──GET /sse/…/:key──▶ gateway ──POST connect──▶ app
 *        ◀── SSE ─────────────┘   ▲ ◀──POST /internal/send── app
 *                                 └──POST disconnect──▶ app (when the stream ends)
 * publisher ──POST /publish──▶ feed ──▶ GET /subscribe?topic=a&topic=b subscribers
 * ```
 *
 * Shutdown (the layer's release, e.g. SIGTERM): new streams are refused,
 * every open stream gets `connection_close` with reason `shutdown` (bounded
 * by `shutdownTimeout`), the disconnect callbacks are sent (bounded by the
 * callback timeout), then the server closes.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Log } from "@sluice/core"
import { SseServer } from "@sluice/http"
import { RedisConnection, RedisLog } from "@sluice/redis"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import type * as HttpServerError from "effect/http/HttpServerError"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Callbacks from "./Callbacks.ts"
import { type Config, ConfigError } from "./Config.ts"
import * as Feed from "./Feed.ts"
import * as KeyedRoutes from "./internal/routes/keyed.ts"
import * as OpsRoutes from "./internal/routes/ops.ts"
import * as SendRoute from "./internal/routes/send.ts"
import * as TopicRoutes from "./internal/routes/topics.ts"
import { createServer } from "./internal/server.ts"
import * as Jwt from "./Jwt.ts"
import * as Keyed from "./Keyed.ts"

/**
 * Why the engines could not start: Redis (with `REDIS_URL`) could not be
 * reached, or the topics' record in it could not be read.
 *
 * @since 0.2.0
 * @category errors
 */
export type EngineError = RedisConnection.RedisUnavailableError | Log.LogError

/**
 * The engines behind the routes for a configuration: in memory (one
 * process), or, with `REDIS_URL`, on Redis: keys, outboxes and tokens in a
 * `RedisRegistry` (one live connection per key across processes; a token
 * given out by one process is addressable on every other), topics in one
 * Redis log for every topic (one `Last-Event-ID` resumes a multi-topic
 * stream on any process), so that several gateway processes behind a load
 * balancer act as one.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Config, Gateway } from "@sluice/gateway"
 *
 * // The keyed registry and the topic feed the routes run on, for a configuration.
 * const Engines = Gateway.engines(Config.defaults)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const engines = (config: Config): Layer.Layer<Keyed.Keyed | Feed.Feed, EngineError> => {
  const pending = { capacity: config.pendingCapacity, ttl: config.pendingTtlMs }
  const feed = {
    history: { maxEvents: config.historyEvents, maxBytes: config.historyBytes, maxAgeMillis: config.historyAgeMs },
    maxEventBytes: config.maxEventBytes,
    coalesce: config.coalesceMs
  }
  if (config.redisUrl === undefined) {
    return Layer.mergeAll(Keyed.layerMemory({ pending, maxKeys: config.maxKeys }), Feed.layerMemory(feed))
  }
  const prefix = config.redisPrefix
  return Layer.mergeAll(
    Keyed.layerRedis({ prefix, name: "keys", pending, maxKeys: config.maxKeys, lease: config.redisLeaseMs }),
    Feed.layerStore({ ...feed, name: "feed" }).pipe(Layer.provide(RedisLog.layer({ prefix })))
  ).pipe(Layer.provide(RedisConnection.layer({ url: config.redisUrl })))
}

/**
 * The routes of a configuration (needs the engines, the callback client and
 * `SseServer`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Config, Gateway } from "@sluice/gateway"
 *
 * // The gateway's routes, to serve next to your own.
 * const Routes = Gateway.routes({ ...Config.defaults, routes: ["/sse/tasks/:key/stream"] })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (config: Config) =>
  Layer.unwrap(Effect.map(
    Jwt.make({
      secret: config.jwtSecret,
      publicKey: config.jwtPublicKey,
      audience: config.jwtAudience,
      issuer: config.jwtIssuer
    }),
    (verifier) =>
      Layer.mergeAll(
        KeyedRoutes.layer(config),
        SendRoute.layer(config),
        TopicRoutes.layer(config, verifier),
        OpsRoutes.layer
      )
  ))

/**
 * The whole gateway for a configuration. `Layer.launch` it to run it; build
 * it (port 0) to test it.
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { Config, Gateway } from "@sluice/gateway"
 *
 * Gateway.layer({ ...Config.defaults, callbackUrl: "http://127.0.0.1:5000/sse/callback", secret: "s3cret" }).pipe(
 *   Layer.launch,
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: Config) =>
  HttpRouter.serve(routes(config), { disableListenLog: true, disableLogger: true }).pipe(
    SseServer.withGracefulShutdown,
    Layer.provideMerge(SseServer.layer({
      maxConnections: config.maxConnections,
      maxConnectionsPerClient: config.maxConnectionsPerClient,
      load: config.maxEventLoopDelayMs === false ? false : { maxEventLoopDelay: config.maxEventLoopDelayMs },
      shutdownTimeout: config.shutdownTimeoutMs
    })),
    // Released after the routes: the disconnect callbacks of the streams
    // closed on shutdown are still sent.
    Layer.provideMerge(Callbacks.layer({
      url: config.callbackUrl,
      secret: config.secret,
      timeoutMillis: config.callbackTimeoutMs,
      concurrency: config.callbackConcurrency
    })),
    Layer.provideMerge(engines(config)),
    Layer.provideMerge(NodeHttpServer.layer(createServer, {
      port: config.port,
      host: config.host,
      // sluice closes the streams itself (bounded); the platform need not wait long.
      gracefulShutdownTimeout: "1 second"
    }))
  )

/**
 * A running gateway: its port and its services.
 *
 * @since 0.1.0
 * @category models
 */
export interface Started {
  readonly port: number
  readonly server: SseServer.Service
  readonly keyed: Keyed.Service
  readonly feed: Feed.Service
}

/**
 * Starts the gateway in the current scope and returns the port it listens
 * on (for tests and embedding).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Config, Gateway } from "@sluice/gateway"
 *
 * // An embedded gateway on a free port (for tests).
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const gateway = yield* Gateway.start({ ...Config.defaults, port: 0, secret: "s3cret" })
 *   return gateway.port
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (
  config: Config
): Effect.Effect<Started, ConfigError | EngineError | HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(layer(config))
    const { address } = yield* Effect.provideContext(HttpServer.HttpServer, context)
    return {
      port: "port" in address ? address.port : 0,
      server: yield* Effect.provideContext(SseServer.SseServer, context),
      keyed: yield* Effect.provideContext(Keyed.Keyed, context),
      feed: yield* Effect.provideContext(Feed.Feed, context)
    }
  })
