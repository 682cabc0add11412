/**
 * Server-wide state for SSE routes: connection limits, the set of open
 * streams, and shutdown.
 *
 * Every SSE response made with `SseResponse` registers here. That gives:
 * - **limits**: at most `maxConnections` streams per server and
 *   `maxConnectionsPerClient` per client key; beyond them the request is
 *   answered `503` (server full) or `429` (client over its share) with
 *   `Retry-After`, before any stream starts;
 * - **admission by load**: while the event loop lags (delay above
 *   `load.maxEventLoopDelay`) or memory runs short (V8 heap above
 *   `load.maxHeapUsed` of its limit, or less than `load.minAvailableMemory`
 *   left to the process), new streams get `503` with a jittered
 *   `Retry-After`; open streams keep their service. Load is sampled every
 *   `load.sampleInterval`, so an admission costs no measurement;
 * - **fast shutdown**: when the server stops, every open stream receives
 *   `connection_close` with reason `shutdown` and a jittered `retry:` hint,
 *   streams are closed in batches, and the whole thing is bounded by
 *   `shutdownTimeout` (default 5 s). Out of the box `@effect/platform-node`
 *   waits up to 20 s for open responses (its `gracefulShutdownTimeout`), and an
 *   SSE response never finishes on its own; wrap your `HttpRouter.serve(...)`
 *   layer with {@link withGracefulShutdown} so streams are closed *before* the
 *   HTTP server starts waiting for them;
 * - **metrics**: `sluice_mailbox_depth` (frames waiting, all streams),
 *   `sluice_mailbox_depth_max` and `sluice_event_loop_delay_seconds` (the
 *   last sample), read when metrics are scraped, and
 *   `sluice_connection_refusals_total{scope, reason}`.
 *
 * Sizing: `maxConnections` is a ceiling, not a target. Measure the stream
 * count at which your `/health` exceeds its deadline on the production
 * machine (`pnpm bench --full` does it for the demo) and set the limit
 * below it; the load check catches the workloads the count did not foresee.
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
export const ConnectionLimitError: typeof internal.ConnectionLimitError = internal.ConnectionLimitError

/**
 * @since 0.1.0
 * @category errors
 */
export type ConnectionLimitError = internal.ConnectionLimitError

/**
 * Which load measurement refused a stream.
 *
 * @since 0.2.0
 * @category models
 */
export type LoadReason = "event_loop_delay" | "heap" | "memory"

/**
 * Admission by load: thresholds above which new streams are refused (`503`
 * with a jittered `Retry-After`, between `retryAfter` and twice it). Each
 * threshold can be turned off with `false`.
 *
 * How to size them: the event-loop delay is what every request waits for
 * (your `/health` included), so keep `maxEventLoopDelay` well below the
 * latency your health checks and clients tolerate. The defaults were
 * calibrated on the demo (see the README) so that new streams are refused
 * before `/health` takes 100 ms on one core.
 *
 * @since 0.2.0
 * @category models
 */
export interface LoadOptions {
  /**
   * Refuse new streams while the event loop's delay (the mean over a sample
   * window, as `perf_hooks.monitorEventLoopDelay` measures it) is above this
   * in the last two windows. Default 40 ms.
   */
  readonly maxEventLoopDelay?: Duration.Input | false | undefined
  /** Refuse new streams while V8's heap is fuller than this share (0 to 1) of its limit. Default 0.85. */
  readonly maxHeapUsed?: number | false | undefined
  /**
   * Refuse new streams while less memory than this (bytes) is left to the
   * process (`process.availableMemory()`, which follows cgroup limits).
   * Default 64 MiB.
   */
  readonly minAvailableMemory?: number | false | undefined
  /** How often the load is measured. Default 250 ms. */
  readonly sampleInterval?: Duration.Input | undefined
}

/**
 * The last load measurement.
 *
 * @since 0.2.0
 * @category models
 */
export interface Load {
  /** Mean event-loop delay over the last sample window, in milliseconds. */
  readonly eventLoopDelayMillis: number
  /** The 99th percentile of the same window, in milliseconds. */
  readonly eventLoopDelayP99Millis: number
  /** V8 heap in use, as a share of its limit (0 to 1). */
  readonly heapUsed: number
  /** Bytes of memory left to the process. */
  readonly availableMemory: number
  /** Why new streams are refused now, if they are. */
  readonly overloaded: LoadReason | undefined
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
  /** Admission by load (see {@link LoadOptions}); `false` admits by counts only. Default: on, with its defaults. */
  readonly load?: LoadOptions | false | undefined
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
 * The load thresholds a server runs with: {@link LoadOptions} with their
 * defaults applied (`undefined`: that threshold is off).
 *
 * @since 0.2.0
 * @category models
 */
export interface LoadSettings {
  readonly maxEventLoopDelayMillis: number | undefined
  readonly maxHeapUsed: number | undefined
  readonly minAvailableMemory: number | undefined
  readonly sampleIntervalMillis: number
}

/**
 * The settings a server runs with: its {@link Options} with their defaults
 * applied, for health pages and logs.
 *
 * @since 0.2.0
 * @category models
 */
export interface Settings {
  readonly maxConnections: number
  readonly maxConnectionsPerClient: number
  readonly clientKey: (request: HttpServerRequest) => string
  readonly retryAfterSeconds: number
  readonly shutdownTimeoutMillis: number
  readonly shutdownBatchSize: number
  /** `undefined` when admission by load is off. */
  readonly load: LoadSettings | undefined
}

/**
 * What the {@link SseServer} service offers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The settings in force (the options with their defaults). */
  readonly settings: Settings
  /**
   * Reserves a slot for a new stream from `request`; the slot is released when
   * the current scope closes. Fails with {@link ConnectionLimitError}.
   */
  readonly admit: (request: HttpServerRequest) => Effect.Effect<void, ConnectionLimitError, Scope.Scope>
  /**
   * Registers an open stream until it ends (its connection's end, which
   * closing the current scope brings about).
   */
  readonly register: (registration: Registration) => Effect.Effect<void, never, Scope.Scope>
  /** Open streams. */
  readonly open: () => number
  /** The last load measurement (zeros when `load` is off). */
  readonly load: () => Load
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
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { SseServer } from "@sluice/http"
 *
 * // A health route that reports the open streams and the load.
 * const Health = HttpRouter.add("GET", "/health", Effect.gen(function*() {
 *   const server = yield* SseServer.SseServer
 *   const load = server.load()
 *   return yield* HttpServerResponse.json({
 *     streams: server.open(),
 *     maxStreams: server.settings.maxConnections,
 *     overloaded: load.overloaded ?? null
 *   })
 * }))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class SseServer extends Context.Service<SseServer, Service>()("@sluice/http/SseServer") {}

/**
 * Builds the service. Streams still open when the layer is released are closed
 * as on shutdown.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { SseServer } from "@sluice/http"
 *
 * const Limits = SseServer.layer({
 *   maxConnections: 5_000,
 *   maxConnectionsPerClient: 16,
 *   load: { maxEventLoopDelay: "50 millis", minAvailableMemory: 128 * 1024 * 1024 }
 * })
 * ```
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
 * @example
 * ```ts
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { createServer } from "node:http"
 * import { SseServer } from "@sluice/http"
 *
 * const Routes = HttpRouter.add("GET", "/health", HttpServerResponse.text("ok"))
 * const main = HttpRouter.serve(Routes).pipe(
 *   SseServer.withGracefulShutdown, // streams get connection_close/shutdown before the server waits
 *   Layer.provide(SseServer.layer()),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 8080 })),
 *   Layer.launch
 * )
 * // NodeRuntime.runMain(main)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const withGracefulShutdown = <A, E, R>(serve: Layer.Layer<A, E, R>): Layer.Layer<A, E, R | SseServer> =>
  Layer.provideMerge(
    Layer.effectDiscard(Effect.flatMap(SseServer, (server) => Effect.addFinalizer(() => server.shutdown))),
    serve
  )
