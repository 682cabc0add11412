/**
 * The in-process baseline of the gateway benchmark: a sluice server whose
 * `Hub` is published to in its own process (no HTTP per event), serving the
 * same kind of subscribers as the gateway's `/subscribe`.
 *
 * - `GET /subscribe`: `SseResponse.hub` (strategy and capacity as the gateway's);
 * - `POST /burst?n=<events>&t=<ms>`: publishes `n` events at once with
 *   `Hub.publishUnsafe`; their data carries `t` (the runner's send time).
 *
 * Prints `port <n>` when it listens.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Hub } from "@sluice/core"
import { SseResponse, SseServer } from "@sluice/http"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

const capacity = Number(process.env["CAPACITY"] ?? 1024)

const program = Effect.gen(function*() {
  const hub = yield* Hub.make({ history: { maxEvents: 10_000 } })
  const routes = Layer.mergeAll(
    HttpRouter.add(
      "GET",
      "/subscribe",
      SseResponse.hub(hub, { capacity, heartbeat: false, strategy: "disconnect" })
    ),
    HttpRouter.add(
      "POST",
      "/burst",
      Effect.gen(function*() {
        const params = yield* HttpServerRequest.ParsedSearchParams
        const n = Number(params["n"] ?? 1)
        const t = String(params["t"] ?? "0")
        for (let i = 0; i < n; i++) Hub.publishUnsafe(hub, { event: "bench", data: `t=${t}` })
        return HttpServerResponse.text("ok")
      })
    )
  )
  const app = HttpRouter.serve(routes, { disableListenLog: true, disableLogger: true }).pipe(
    SseServer.withGracefulShutdown,
    // Admission by count only, as the gateway in the benchmark: a loaded
    // machine must not turn subscribers away mid-measure.
    Layer.provide(SseServer.layer({ maxConnections: 100_000, maxConnectionsPerClient: 100_000, load: false })),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )
  const context = yield* Layer.build(app)
  const { address } = yield* Effect.provideContext(HttpServer.HttpServer, context)
  console.log(`port ${"port" in address ? address.port : 0}`)
  return yield* Effect.never
})

NodeRuntime.runMain(Effect.scoped(program), { disableErrorReporting: true })
