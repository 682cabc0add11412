/**
 * `GET /health` (200 while serving, 503 once shutting down, so a load
 * balancer stops sending clients), `GET /metrics` (Prometheus), and a
 * problem-details 404 for every other path.
 *
 * @internal
 */
import { SseServer } from "@sluice/http"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import { PrometheusMetrics } from "effect/observability"
import * as Feed from "../../Feed.ts"
import * as Keyed from "../../Keyed.ts"
import { refuse } from "../problem.ts"

/** @internal */
export const layer = Layer.mergeAll(
  HttpRouter.add(
    "GET",
    "/health",
    Effect.gen(function*() {
      const server = yield* SseServer.SseServer
      const keyed = yield* Keyed.Keyed
      const feed = yield* Feed.Feed
      const stopping = server.shuttingDown()
      const keys = keyed.stats()
      const topics = feed.stats()
      return HttpServerResponse.jsonUnsafe({
        status: stopping ? "shutting_down" : "ok",
        streams: server.open(),
        keys: { keys: keys.keys, live: keys.live, pending: keys.pending },
        topics: { subscribers: topics.subscribers, topics: topics.topics, published: topics.published }
      }, { status: stopping ? 503 : 200, headers: { "cache-control": "no-store" } })
    })
  ),
  PrometheusMetrics.layerHttp({ path: "/metrics" }),
  // Anything else: a problem-details 404 (static routes win over this one).
  HttpRouter.add(
    "*",
    "/*",
    Effect.flatMap(
      HttpServerRequest,
      (request) => refuse("none", "no_route", 404, `no route for ${request.method} ${request.url.split("?")[0]}`)
    )
  )
)
