/**
 * A small sluice application on Redis, run as a real process by the
 * multi-process tests (three of them on free ports, one redis-server):
 *
 * - `GET  /events`: the `events` topic (a hub over `RedisLog`), with replay
 *   by `Last-Event-ID`;
 * - `POST /publish`: `{"events":[{"event","data","id"?}]}` published on this
 *   node: `200 {"ids":[…]}`, `400` for a refused event, `503` with the
 *   `LogError` when Redis did not record it;
 * - `GET  /tasks/:id/stream`: a keyed stream (`RedisRegistry`);
 * - `POST /tasks/:id/send`: `{"data","terminal"?}` sent to that key from this
 *   node: `200 {"result"}`, or the error's tag and message.
 * - `POST /streams/:id`: `{"count","pauseMs"}` starts a resumable stream
 *   (`Resumable` on `RedisResumable` and `RedisLog`) whose producer sends
 *   `token` events `t1` … `t<count>`, a pause after each; it logs
 *   `started <id> on <node>` when it starts and `finalized <id> <how>` when
 *   its finalizer runs. `201 {"id"}`, or `200 {"existing": true}`.
 * - `GET /streams/:id/stream`: attaches (`Last-Event-ID`), ending with `done`
 *   and `connection_close` with the reason; `DELETE /streams/:id` stops it.
 *
 * Environment: `REDIS_URL` (required), `PORT` (0: a free one), `NODE_NAME`,
 * `LEASE_MS` (the resumable streams' lease, default 2000). Logs
 * `Listening on http://127.0.0.1:<port>`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Hub, Registry, Resumable, SseEvent } from "@sluice/core"
import { SseResponse, SseResumable, SseServer } from "@sluice/http"
import { RedisConnection, RedisLog, RedisRegistry, RedisResumable } from "@sluice/redis"
import { Cause, Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

const env = process.env
const node = env["NODE_NAME"] ?? "node"

class App extends Context.Service<App, {
  readonly hub: Hub.Hub
  readonly tasks: Registry.Registry
  readonly streams: Resumable.Resumable
}>()("tests/redis/App") {
  static readonly layer = Layer.effect(
    App,
    Effect.gen(function*() {
      const hub = yield* Effect.orDie(RedisLog.hub("events", {
        history: { maxEvents: 100_000, maxBytes: 64 * 1024 * 1024 },
        maxEventBytes: 4_096,
        allowedEvents: ["n", "message"]
      }))
      const tasks = yield* RedisRegistry.make({ name: "tasks", pending: { capacity: 1_000, ttl: "10 minutes" } })
      const streams = yield* Resumable.make({
        node,
        lease: Number(env["LEASE_MS"] ?? 2_000),
        defaults: { maxLifetime: "10 minutes", retention: "5 minutes" }
      })
      return App.of({ hub, tasks, streams })
    })
  )
}

const json = (body: unknown, status = 200) => HttpServerResponse.jsonUnsafe(body, { status })
const fast = { lifecycle: { retry: { base: 50, jitter: 0.2 } }, heartbeat: 1_000 } as const

interface PublishBody {
  readonly events: ReadonlyArray<{ readonly event?: string; readonly data: string; readonly id?: string }>
}

// The producer of a resumable stream: `token` events t1 … t<count>. What it
// logs lets a test see where it ran and that its finalizer ran once.
const tokens = (id: string, count: number, pauseMs: number) => (mailbox: Resumable.Sender) =>
  Effect.gen(function*() {
    console.log(`started ${id} on ${node}`)
    yield* Effect.addFinalizer((exit) =>
      Effect.sync(() => {
        const how = exit._tag === "Success"
          ? "completed"
          : Cause.hasInterruptsOnly(exit.cause)
          ? "interrupted"
          : "failed"
        console.log(`finalized ${id} ${how}`)
      })
    )
    for (let i = 1; i <= count; i++) {
      yield* mailbox.send(SseEvent.make({ event: "token", data: `t${i}` }))
      if (pauseMs > 0) yield* Effect.sleep(pauseMs)
    }
  })

const streamId = Effect.map(HttpRouter.params, (p) => p["id"] ?? "")
const done = (end: Resumable.End) => [
  SseEvent.make({ event: "done", data: JSON.stringify({ reason: Resumable.reasonOf(end) }) })
]

const routes = Layer.mergeAll(
  HttpRouter.add(
    "POST",
    "/streams/:id",
    Effect.gen(function*() {
      const { streams } = yield* App
      const id = yield* streamId
      const body = (yield* Effect.orDie((yield* HttpServerRequest.HttpServerRequest).json)) as unknown as {
        readonly count: number
        readonly pauseMs: number
      }
      return yield* SseResumable.start(Resumable.start(streams, id, tokens(id, body.count, body.pauseMs)))
    })
  ),
  HttpRouter.add(
    "GET",
    "/streams/:id/stream",
    Effect.flatMap(App, ({ streams }) => SseResumable.attach(streams, () => streamId, { ...fast, end: done }))
  ),
  HttpRouter.add("DELETE", "/streams/:id", Effect.flatMap(App, ({ streams }) => SseResumable.stop(streams, streamId))),
  HttpRouter.add("GET", "/events", Effect.flatMap(App, ({ hub }) => SseResponse.hub(hub, fast))),
  HttpRouter.add(
    "POST",
    "/publish",
    Effect.gen(function*() {
      const { hub } = yield* App
      const body = (yield* Effect.orDie((yield* HttpServerRequest.HttpServerRequest).json)) as unknown as PublishBody
      // One run: the hub appends them as one burst.
      const published = yield* Effect.result(
        Effect.forEach(body.events, (e) => Hub.publish(hub, e), { concurrency: "unbounded" })
      )
      if (published._tag === "Success") return json({ node, ids: published.success.map((p) => p.id) })
      const error = published.failure
      return json({ node, error: error._tag, message: error.message }, error._tag === "LogError" ? 503 : 400)
    })
  ),
  HttpRouter.add(
    "GET",
    "/tasks/:id/stream",
    Effect.flatMap(
      App,
      ({ tasks }) => SseResponse.keyed(tasks, () => Effect.map(HttpRouter.params, (p) => p["id"] ?? ""), fast)
    )
  ),
  HttpRouter.add(
    "POST",
    "/tasks/:id/send",
    Effect.gen(function*() {
      const { tasks } = yield* App
      const id = (yield* HttpRouter.params)["id"] ?? ""
      const body = (yield* Effect.orDie((yield* HttpServerRequest.HttpServerRequest).json)) as unknown as {
        readonly data: string
        readonly terminal?: string
      }
      const sent = yield* Effect.result(
        Registry.send(tasks, id, SseEvent.make({ event: "progress", data: body.data }), {
          terminal: body.terminal
        })
      )
      if (sent._tag === "Success") return json({ node, result: sent.success })
      const error = sent.failure
      return json(
        { node, error: error._tag, message: error.message },
        error._tag === "RegistryUnavailableError" ? 503 : 409
      )
    })
  ),
  HttpRouter.add("GET", "/health", Effect.succeed(json({ node, status: "ok" })))
)

HttpRouter.serve(routes).pipe(
  SseServer.withGracefulShutdown,
  Layer.provide(SseServer.layer({ maxConnections: 10_000, maxConnectionsPerClient: 10_000, shutdownTimeout: 1_000 })),
  Layer.provide(App.layer),
  Layer.provide(Layer.mergeAll(
    RedisLog.layer({ positionCheck: "200 millis", ping: "500 millis", timeout: "1 second" }),
    RedisResumable.layer({ ping: "500 millis", timeout: "500 millis" })
  )),
  Layer.provide(RedisConnection.layer({ url: env["REDIS_URL"] ?? "redis://127.0.0.1:6379" })),
  Layer.provideMerge(NodeHttpServer.layer(createServer, {
    port: Number(env["PORT"] ?? 0),
    host: "127.0.0.1",
    gracefulShutdownTimeout: "1 second"
  })),
  Layer.launch,
  NodeRuntime.runMain
)
