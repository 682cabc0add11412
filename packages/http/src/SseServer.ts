/**
 * Server-wide state for SSE routes: connection limits, the set of open
 * streams, and shutdown.
 *
 * Every SSE response made with `SseResponse` registers here. That gives:
 * - **limits**: at most `maxConnections` streams per server and
 *   `maxConnectionsPerClient` per client key; beyond them the request is
 *   answered `503` (server full) or `429` (client over its share) with
 *   `Retry-After`, before any stream starts;
 * - **fast shutdown**: when the server stops, every open stream receives
 *   `connection_close` with reason `shutdown` and a jittered `retry:` hint,
 *   streams are closed in batches, and the whole thing is bounded by
 *   `shutdownTimeout` (default 5 s). Out of the box `@effect/platform-node`
 *   waits up to 20 s for open responses (its `gracefulShutdownTimeout`), and an
 *   SSE response never finishes on its own; wrap your `HttpRouter.serve(...)`
 *   layer with {@link withGracefulShutdown} so streams are closed *before* the
 *   HTTP server starts waiting for them;
 * - **metrics**: `sluice_mailbox_depth` (frames waiting, all streams) and
 *   `sluice_mailbox_depth_max`, read when metrics are scraped.
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { Layer } from "effect"
 * import { createServer } from "node:http"
 * import { SseServer } from "@sluice/http"
 *
 * const Routes = HttpRouter.add("GET", "/health", HttpServerResponse.text("ok"))
 * const Main = HttpRouter.serve(Routes).pipe(
 *   SseServer.withGracefulShutdown,
 *   Layer.provide(SseServer.layer({ maxConnections: 10_000, shutdownTimeout: "5 seconds" })),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { Connection } from "@sluice/core"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/server.ts"

/**
 * The server cannot take another stream: it is at `maxConnections`
 * (`scope: "server"`, answered 503), the client is at
 * `maxConnectionsPerClient` (`scope: "client"`, answered 429), or the server
 * is shutting down (`scope: "shutdown"`, answered 503).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionLimitError extends Data.TaggedError("ConnectionLimitError")<{
  readonly scope: "server" | "client" | "shutdown"
  readonly limit: number
  readonly retryAfterSeconds: number
}> {
  override get message(): string {
    return this.scope === "shutdown"
      ? "the server is shutting down"
      : this.scope === "server"
      ? `the server has reached its limit of ${this.limit} streams`
      : `this client has reached its limit of ${this.limit} streams`
  }
}

/**
 * Limits and shutdown settings. A limit that is not a number of at least 1
 * (`Infinity` for none) or a duration that is not one fails the layer when
 * it is built, naming the option.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Open streams per server. Default 10 000. */
  readonly maxConnections?: number | undefined
  /** Open streams per client key. Default 64. */
  readonly maxConnectionsPerClient?: number | undefined
  /**
   * What identifies a client for the per-client limit. Default: the peer
   * address. Behind a proxy, derive it from a header you trust (never trust
   * `X-Forwarded-For` from the open internet).
   */
  readonly clientKey?: ((request: HttpServerRequest) => string) | undefined
  /** `Retry-After` sent with 429/503 answers. Default 5 seconds. */
  readonly retryAfter?: Duration.Input | undefined
  /** Upper bound for closing every stream on shutdown. Default 5 seconds. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /** Streams closed together per shutdown batch. Default 500. */
  readonly shutdownBatchSize?: number | undefined
}

/**
 * What a shutdown did.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShutdownReport {
  /** Streams that were open when shutdown began. */
  readonly open: number
  /** Streams that received their close frames and ended within the timeout. */
  readonly closedGracefully: number
  /** Streams cut at the deadline. */
  readonly forced: number
  readonly batches: number
  readonly millis: number
}

/**
 * A stream registered with the server, closable on shutdown.
 *
 * @since 0.1.0
 * @category models
 */
export interface Registration {
  readonly connection: Connection.Connection
  /** Ends the stream with reason `shutdown` (final frames, then the end). */
  readonly closeForShutdown: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly options: internal.Resolved
  /**
   * Reserves a slot for a new stream from `request`; the slot is released when
   * the current scope closes. Fails with {@link ConnectionLimitError}.
   */
  readonly admit: (request: HttpServerRequest) => Effect.Effect<void, ConnectionLimitError, Scope.Scope>
  /** Registers an open stream until the current scope closes. */
  readonly register: (registration: Registration) => Effect.Effect<void, never, Scope.Scope>
  /** Open streams. */
  readonly open: () => number
  /** The connections of the open streams (for inspection: sizes, stats). */
  readonly connections: () => ReadonlyArray<Connection.Connection>
  readonly shuttingDown: () => boolean
  /**
   * Closes every open stream (batches, bounded by `shutdownTimeout`) and
   * refuses new ones. Idempotent: later calls return the first report.
   */
  readonly shutdown: Effect.Effect<ShutdownReport>
}

/**
 * The server-wide SSE service.
 *
 * @since 0.1.0
 * @category services
 */
export class SseServer extends Context.Service<SseServer, Service>()("@sluice/http/SseServer") {}

/**
 * Builds the service. Streams still open when the layer is released are closed
 * as on shutdown.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<SseServer> => Layer.effect(SseServer, internal.make(options))

/**
 * Wraps the layer that serves your routes so that, when the server stops,
 * every SSE stream is closed (with `connection_close` / `shutdown`) before the
 * HTTP server waits for open responses. Without it, the platform waits up to
 * its `gracefulShutdownTimeout` (20 s by default) for streams that never end.
 *
 * @since 0.1.0
 * @category layers
 */
export const withGracefulShutdown = <A, E, R>(serve: Layer.Layer<A, E, R>): Layer.Layer<A, E, R | SseServer> =>
  Layer.provideMerge(
    Layer.effectDiscard(Effect.flatMap(SseServer, (server) => Effect.addFinalizer(() => server.shutdown))),
    serve
  )
