/**
 * The demo server: every sluice feature behind a few routes and a page.
 *
 * - tasks: a keyed registry (pending events, replacement, terminal close);
 * - version: a plain stream with heartbeat events;
 * - ticker: a hub with replay by Last-Event-ID and a slow-client policy;
 * - chat: bursts of tokens with pauses, like a language model;
 * - /metrics (Prometheus) and /health.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { SseResponse, SseServer } from "@sluice/http"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { decodeBody } from "./body.ts"
import { chat } from "./chat.ts"
import { PageRoutes } from "./page.ts"
import { problem } from "./problem.ts"
import { CreateTask, Tasks } from "./tasks.ts"
import { Publish, Ticker } from "./ticker.ts"
import { readVersion, versionStream } from "./version.ts"

export interface Options {
  readonly port: number
  readonly host?: string | undefined
  /**
   * Interval of the version stream's heartbeat events, and of the heartbeat
   * comments of the other streams while they are idle. Default 5000.
   */
  readonly heartbeatMs?: number | undefined
  /** How often the simulated market moves. Default 250 ms. */
  readonly tickerIntervalMs?: number | undefined
  /** Upper bound for closing every stream on shutdown. Default 5 s. */
  readonly shutdownTimeoutMs?: number | undefined
  readonly env?: NodeJS.ProcessEnv | undefined
}

const json = (body: unknown, status = 200) => HttpServerResponse.jsonUnsafe(body, { status })

const taskRoutes = (options: Options) =>
  Layer.mergeAll(
    HttpRouter.add(
      "POST",
      "/api/tasks",
      Effect.gen(function*() {
        const body = yield* decodeBody(CreateTask)
        if ("problem" in body) return body.problem
        if (body.value.failAt !== undefined && body.value.failAt > body.value.steps) {
          return problem(400, "Bad Request", "failAt must be between 1 and steps")
        }
        const id = yield* Effect.flatMap(Tasks, (tasks) => tasks.start(body.value))
        return json({ id }, 201)
      })
    ),
    HttpRouter.add(
      "GET",
      "/api/tasks/:id/stream",
      Effect.flatMap(
        Tasks,
        (tasks) =>
          SseResponse.keyed(tasks.registry, () => Effect.map(HttpRouter.params, (p) => p["id"] ?? ""), {
            notFound: { reason: "task_not_found", message: "task not found" },
            heartbeat: options.heartbeatMs ?? 5_000
          })
      )
    )
  )

const tickerRoutes = (options: Options) =>
  Layer.mergeAll(
    HttpRouter.add(
      "GET",
      "/api/ticker/stream",
      Effect.flatMap(Ticker, (ticker) =>
        // A client that cannot keep up is dropped and resumes from the history.
        SseResponse.hub(ticker.hub, { policy: "disconnect", capacity: 256, heartbeat: options.heartbeatMs ?? 5_000 }))
    ),
    HttpRouter.add(
      "POST",
      "/api/ticker/publish",
      Effect.gen(function*() {
        const body = yield* decodeBody(Publish)
        if ("problem" in body) return body.problem
        const ticker = yield* Ticker
        const published = yield* Effect.result(ticker.publish(body.value))
        if (published._tag === "Failure") return problem(400, "Bad Request", published.failure.message)
        return json({ id: published.success.id }, 202)
      })
    )
  )

const streamRoutes = (options: Options) => {
  const version = readVersion(options.env ?? process.env)
  return Layer.mergeAll(
    HttpRouter.add(
      "GET",
      "/api/version/stream",
      SseResponse.stream(() => versionStream(version, options.heartbeatMs ?? 5_000))
    ),
    HttpRouter.add(
      "GET",
      "/api/chat/stream",
      Effect.flatMap(HttpServerRequest.ParsedSearchParams, (params) => {
        const prompt = params["prompt"]
        return SseResponse.stream(() => chat(typeof prompt === "string" ? prompt : ""), {
          heartbeat: options.heartbeatMs ?? 5_000
        })
      })
    ),
    HttpRouter.add("GET", "/health", Effect.succeed(json({ status: "ok" }))),
    PrometheusMetrics.layerHttp({ path: "/metrics" })
  )
}

/** The whole application for a given port; `Layer.launch` it or build it in tests. */
export const layer = (options: Options) =>
  HttpRouter.serve(Layer.mergeAll(taskRoutes(options), tickerRoutes(options), streamRoutes(options), PageRoutes)).pipe(
    SseServer.withGracefulShutdown,
    // Generous limits: the demo is often driven by many clients from one address (load tests).
    Layer.provide(SseServer.layer({
      maxConnections: 20_000,
      maxConnectionsPerClient: 10_000,
      shutdownTimeout: options.shutdownTimeoutMs ?? 5_000
    })),
    Layer.provide(Tasks.layer),
    Layer.provide(Ticker.layer({ intervalMs: options.tickerIntervalMs ?? 250 })),
    Layer.provideMerge(NodeHttpServer.layer(createServer, {
      port: options.port,
      host: options.host ?? "127.0.0.1",
      // sluice closes SSE streams itself (bounded); don't wait 20 s for them.
      gracefulShutdownTimeout: "1 second"
    }))
  )

/** Starts the demo in the current scope and returns its port (for tests). */
export const start = (options: Omit<Options, "port"> & { readonly port?: number }) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(layer({ port: 0, ...options }))
    const { address } = yield* Effect.provideContext(HttpServer.HttpServer, context)
    return { port: "port" in address ? address.port : 0 }
  })
