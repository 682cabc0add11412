/**
 * The demo server: every sluice feature behind a few routes and a page.
 *
 * - tasks: a keyed registry (pending events, replacement, terminal close);
 * - version: a plain stream with heartbeat events;
 * - ticker: a hub with replay by Last-Event-ID and a slow-client policy;
 * - chat: bursts of tokens with pauses, like a language model, as a
 *   resumable stream (start, attach and resume by id, stop);
 * - /metrics (Prometheus) and /health (with the server's load and sockets).
 *
 * Safe to expose (see `config.ts` for the settings): POST routes take only
 * `application/json` (415 otherwise), publishing needs a bearer token (the
 * page gets it from `GET /api/session`), writes are rate-limited per client,
 * running tasks are capped per client, the task registry's waiting events
 * have a byte budget, SSE streams are admitted by count and by load, and
 * sockets are capped (silent ones make room and time out). Requests are not
 * logged one by one unless `LOG_REQUESTS=1`; failures always are.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Log, ResumableCoordinator } from "@sluice/core"
import { SocketGuard, SseResponse, SseResumable, SseServer } from "@sluice/http"
import type { RedisConnection } from "@sluice/redis"
import { Cause, Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import type { Redis } from "effect/persistence"
import type * as Http from "node:http"
import { decodeBody } from "./body.ts"
import { Ask, chat, Chats, done } from "./chat.ts"
import * as Cluster from "./cluster.ts"
import { type Config, fromEnv } from "./config.ts"
import { clientKey, firstRefusal, limitRate, requireBearer, requireJson } from "./guards.ts"
import { PageRoutes } from "./page.ts"
import { problem } from "./problem.ts"
import * as RateLimit from "./rateLimit.ts"
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

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers })

const taskRoutes = (options: Options, config: Config) => {
  const rate = RateLimit.make(config.taskRate)
  return Layer.mergeAll(
    HttpRouter.add(
      "POST",
      "/api/tasks",
      Effect.gen(function*() {
        const refused = yield* firstRefusal(requireJson, limitRate(rate, "task creations"))
        if (refused !== undefined) return refused
        const body = yield* decodeBody(CreateTask)
        if ("problem" in body) return body.problem
        if (body.value.failAt !== undefined && body.value.failAt > body.value.steps) {
          return problem(400, "Bad Request", "failAt must be between 1 and steps")
        }
        const client = clientKey(yield* HttpServerRequest.HttpServerRequest)
        const started = yield* Effect.result(Effect.flatMap(Tasks, (tasks) => tasks.start(body.value, client)))
        if (started._tag === "Success") return json({ id: started.success }, 201)
        const error = started.failure
        return error._tag === "TooManyTasksError"
          ? problem(429, "Too Many Requests", error.message, { "retry-after": "5" })
          : problem(503, "Service Unavailable", error.message, {
            "retry-after": String(5 + Math.floor(Math.random() * 6))
          })
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
}

const tickerRoutes = (options: Options, config: Config) => {
  const rate = RateLimit.make(config.publishRate)
  return Layer.mergeAll(
    HttpRouter.add(
      "GET",
      "/api/ticker/stream",
      Effect.flatMap(Ticker, (ticker) =>
        // A client that cannot keep up is dropped and resumes from the history.
        SseResponse.hub(ticker.hub, { strategy: "disconnect", capacity: 256, heartbeat: options.heartbeatMs ?? 5_000 }))
    ),
    HttpRouter.add(
      "POST",
      "/api/ticker/publish",
      Effect.gen(function*() {
        // Cheapest first: the media type, then the token, then the client's rate.
        const refused = yield* firstRefusal(
          requireJson,
          requireBearer(config.publishToken),
          limitRate(rate, "publishes")
        )
        if (refused !== undefined) return refused
        const body = yield* decodeBody(Publish)
        if ("problem" in body) return body.problem
        const ticker = yield* Ticker
        const published = yield* Effect.result(ticker.publish(body.value))
        if (published._tag === "Failure") {
          // Redis (REDIS_URL) did not record it: try again later.
          return published.failure._tag === "LogError"
            ? problem(503, "Service Unavailable", published.failure.message, { "retry-after": "5" })
            : problem(400, "Bad Request", published.failure.message)
        }
        return json({ id: published.success.id }, 202)
      })
    ),
    // The page's settings: same-origin only (no CORS headers), so another
    // site cannot read the token.
    HttpRouter.add(
      "GET",
      "/api/session",
      Effect.succeed(json({ publishToken: config.publishToken }, 200, { "cache-control": "no-store" }))
    )
  )
}

const chatRoutes = (options: Options, config: Config) => {
  const rate = RateLimit.make(config.chatRate)
  const id = Effect.map(HttpRouter.params, (p) => p["id"] ?? "")
  return Layer.mergeAll(
    HttpRouter.add(
      "POST",
      "/api/chat",
      Effect.gen(function*() {
        const refused = yield* firstRefusal(requireJson, limitRate(rate, "chat questions"))
        if (refused !== undefined) return refused
        const body = yield* decodeBody(Ask)
        if ("problem" in body) return body.problem
        const chats = yield* Chats
        return yield* SseResumable.start(chats.ask(body.value), {
          location: (started) => `/api/chat/${started}/stream`
        })
      })
    ),
    HttpRouter.add(
      "GET",
      "/api/chat/:id/stream",
      Effect.flatMap(
        Chats,
        (chats) => SseResumable.attach(chats.answers, () => id, { heartbeat: options.heartbeatMs ?? 5_000, end: done })
      )
    ),
    HttpRouter.add(
      "DELETE",
      "/api/chat/:id",
      Effect.gen(function*() {
        const refused = yield* limitRate(rate, "chat stops")
        if (refused !== undefined) return refused
        const chats = yield* Chats
        return yield* SseResumable.stop(chats.answers, id)
      })
    )
  )
}

const streamRoutes = (options: Options, sockets: () => SocketGuard.Stats | undefined) => {
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
    HttpRouter.add(
      "GET",
      "/health",
      Effect.gen(function*() {
        const server = yield* SseServer.SseServer
        const tasks = yield* Tasks
        const chats = yield* Chats
        return json(
          {
            status: "ok",
            streams: server.open(),
            tasks: { running: yield* tasks.running, known: yield* tasks.known, pending: tasks.registry.stats() },
            chats: chats.answers.stats(),
            load: server.load(),
            sockets: sockets()
          },
          200,
          { "cache-control": "no-store" }
        )
      })
    ),
    PrometheusMetrics.layerHttp({ path: "/metrics" })
  )
}

// An unknown path is the client's mistake: a 404 with a problem body, not a
// failure to log (a scan of random paths must not fill the log). Wildcard
// routes match only what no other route does; not for HEAD, which the router
// answers from the GET route of the same path.
const notFound = Effect.succeed(problem(404, "Not Found", "no route for this method and path"))
const NotFoundRoutes = Layer.mergeAll(
  HttpRouter.add("GET", "*", notFound),
  HttpRouter.add("POST", "*", notFound),
  HttpRouter.add("PUT", "*", notFound),
  HttpRouter.add("PATCH", "*", notFound),
  HttpRouter.add("DELETE", "*", notFound),
  HttpRouter.add("OPTIONS", "*", notFound)
)

const isRouteNotFound = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.some((reason) =>
    Cause.isFailReason(reason) && HttpServerError.isHttpServerError(reason.error) &&
    reason.error.reason._tag === "RouteNotFound"
  )

// Failures are always logged; every request only with LOG_REQUESTS=1 (a
// flood of requests must not become a flood of log lines).
const logFailures = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.onExit(app, (exit) => {
      const annotations = { "http.method": request.method, "http.url": request.url.split("?")[0] ?? "" }
      if (exit._tag === "Success") {
        return exit.value.status >= 500 && exit.value.status !== 503
          ? Effect.annotateLogs(Effect.logError("Sent HTTP response", { status: exit.value.status }), annotations)
          : Effect.void
      }
      // A client that left is not a failure, nor a HEAD of an unknown path.
      if (Cause.hasInterruptsOnly(exit.cause) || isRouteNotFound(exit.cause)) return Effect.void
      return Effect.annotateLogs(Effect.logError("HTTP request failed", exit.cause), annotations)
    }))

/** The whole application for a given port; `Layer.launch` it or build it in tests. */
export const layer = (options: Options) => {
  const config = fromEnv(options.env ?? process.env)
  // With REDIS_URL: the ticker, the tasks and the chat's answers in Redis (fails at start, naming the address, when unreachable).
  const cluster:
    | Layer.Layer<Log.Store | ResumableCoordinator.Coordinator | Redis.Redis, RedisConnection.RedisUnavailableError>
    | Layer.Layer<never> = Cluster.layer(config.redisUrl)
  let nodeServer: Http.Server | undefined
  const announce = Layer.effectDiscard(
    config.publishTokenGenerated
      ? Effect.logInfo(`Publish token (DEMO_PUBLISH_TOKEN was not set): ${config.publishToken}`)
      : Effect.void
  )
  const routes = Layer.mergeAll(
    taskRoutes(options, config),
    tickerRoutes(options, config),
    chatRoutes(options, config),
    streamRoutes(options, () => nodeServer === undefined ? undefined : SocketGuard.stats(nodeServer)),
    PageRoutes,
    NotFoundRoutes,
    announce
  )
  return (config.logRequests ? HttpRouter.serve(routes) : HttpRouter.serve(routes, {
    disableLogger: true,
    middleware: logFailures
  })).pipe(
    SseServer.withGracefulShutdown,
    Layer.provide(SseServer.layer({
      maxConnections: config.maxStreams,
      maxConnectionsPerClient: config.maxStreamsPerClient,
      shutdownTimeout: options.shutdownTimeoutMs ?? 5_000,
      ...(config.maxEventLoopDelayMs === undefined ? {} : {
        load: { maxEventLoopDelay: config.maxEventLoopDelayMs === 0 ? false : config.maxEventLoopDelayMs }
      })
    })),
    // With REDIS_URL the tasks, the ticker and the chat's resumable answers are in Redis.
    Layer.provide(
      Tasks.layer({ maxPerClient: config.maxTasksPerClient, pendingBytes: config.pendingBytes }).pipe(
        Layer.provide(cluster)
      )
    ),
    Layer.provide(Chats.layer({ maxChats: config.maxChats, pauseMs: config.chatPauseMs }).pipe(Layer.provide(cluster))),
    Layer.provide(Ticker.layer({ intervalMs: options.tickerIntervalMs ?? 250 }).pipe(Layer.provide(cluster))),
    Layer.provideMerge(NodeHttpServer.layer(() => {
      nodeServer = SocketGuard.createServer({ maxSockets: config.maxSockets })
      return nodeServer
    }, {
      port: options.port,
      host: options.host ?? "127.0.0.1",
      // sluice closes SSE streams itself (bounded); don't wait 20 s for them.
      gracefulShutdownTimeout: "1 second"
    }))
  )
}

/** Starts the demo in the current scope and returns its port (for tests). */
export const start = (options: Omit<Options, "port"> & { readonly port?: number }) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(layer({ port: 0, ...options }))
    const { address } = yield* Effect.provideContext(HttpServer.HttpServer, context)
    return { port: "port" in address ? address.port : 0 }
  })
