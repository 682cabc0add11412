/**
 * A real HTTP server for tests of SSE routes: your routes, sluice's
 * `SseServer` and its graceful shutdown, on 127.0.0.1 and an ephemeral port,
 * for the lifetime of the current scope.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import * as SseServer from "../SseServer.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface TestServer {
  readonly port: number
  /** The server's `SseServer` service: open streams, connections, shutdown. */
  readonly server: SseServer.Service
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends SseServer.Options {
  /** A layer providing `Metric.FiberRuntimeMetrics` (a `LeakTracker`'s `layer`) to count the server's fibers. */
  readonly tracker?: Layer.Layer<never> | undefined
}

/**
 * Serves `routes` until the current scope closes.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { SseEvent } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 * import { TestClient, TestServer } from "@sluice/http/testing"
 *
 * const test = Effect.gen(function*() {
 *   const { port } = yield* TestServer.serve(
 *     HttpRouter.add("GET", "/e", SseResponse.stream(() => Stream.make(SseEvent.data("hi"))))
 *   )
 *   const client = yield* TestClient.open(port, "/e")
 *   yield* client.ended
 *   return client.events() // connection_open, hi, connection_close
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = <E>(
  // Routes may require only what the router and sluice provide (HttpRouter,
  // SseServer): provide anything else to the routes layer first.
  routes: Layer.Layer<never, E, any>,
  options: Options = {}
): Effect.Effect<TestServer, E, Scope.Scope> =>
  Effect.gen(function*() {
    const app = HttpRouter.serve(routes, { disableListenLog: true, disableLogger: true }).pipe(
      SseServer.withGracefulShutdown,
      Layer.provideMerge(SseServer.layer(options)),
      Layer.provideMerge(NodeHttpServer.layer(Http.createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provide(options.tracker ?? Layer.empty)
    )
    const context = yield* Layer.build(app as Layer.Layer<SseServer.SseServer | HttpServer.HttpServer, E, never>)
    const { address } = yield* Effect.provideContext(HttpServer.HttpServer, context)
    const server = yield* Effect.provideContext(SseServer.SseServer, context)
    return { port: "port" in address ? address.port : 0, server } satisfies TestServer
  })

/**
 * Lets the event loop run (I/O included: each yield is a scheduler turn)
 * until `condition` holds, at most `turns` times, and returns whether it
 * holds. No timers, no sleeps.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TestServer } from "@sluice/http/testing"
 *
 * // Waits (yielding, no sleep) until the server has seen 3 streams; false if it never does.
 * const threeOpen = (server: TestServer.TestServer) => TestServer.until(() => server.server.open() >= 3)
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const until = (condition: () => boolean, turns = 100_000): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    for (let i = 0; i < turns && !condition(); i++) yield* Effect.yieldNow
    return condition()
  })
