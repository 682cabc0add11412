import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as Http from "node:http"
import { SseServer } from "../../src/index.ts"

export interface TestServer {
  readonly port: number
  readonly server: SseServer.Service
}

/**
 * Serves `routes` on 127.0.0.1, port 0, with the SseServer service and the
 * graceful-shutdown hook, for the lifetime of the current scope.
 */
export const serve = <E, R>(
  routes: Layer.Layer<never, E, R>,
  options: SseServer.Options & { readonly tracker?: Layer.Layer<never> } = {}
) =>
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
 * until `condition` holds, at most `turns` times. No timers, no sleeps.
 */
export const until = (condition: () => boolean, turns = 100_000) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns && !condition(); i++) yield* Effect.yieldNow
    return condition()
  })
