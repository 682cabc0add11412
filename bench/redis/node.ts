/**
 * One node of the two-nodes-vs-one benchmark: a sluice hub over a Redis log, served on
 * `GET /events` (the `sluice-redis` peer's route, with mailboxes large enough to hold a whole
 * run, so nobody is disconnected, and no load admission, so every client gets in), and a
 * publisher driven over IPC.
 *
 * `node node.ts` with `REDIS_URL` and `PREFIX`; sends `{ port }` once listening; on
 * `{ publish: n, burst }` publishes n events in runs of `burst` and answers `{ published }`.
 * Exits when the runner's IPC channel closes.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Hub } from "@sluice/core"
import { SseResponse, SseServer } from "@sluice/http"
import { RedisConnection, RedisLog } from "@sluice/redis"
import { Context, Effect, Layer, Scope } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"

process.on("disconnect", () => process.exit(0))

const scope = Effect.runSync(Scope.make())
const logs = RedisLog.layer({ prefix: process.env["PREFIX"] ?? "bench" }).pipe(
  Layer.provide(RedisConnection.layer({ url: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379" }))
)
const services = await Effect.runPromise(Layer.buildWithScope(logs, scope))
const hub = await Effect.runPromise(
  Scope.provide(Effect.provideContext(RedisLog.hub("events", { history: false }), services), scope)
)
const app = HttpRouter.serve(
  HttpRouter.add("GET", "/events", SseResponse.hub(hub, { capacity: 65_536, lifecycle: { open: false } })),
  { disableListenLog: true, disableLogger: true }
).pipe(
  // No load admission: a benchmark wants every client in, also while the node is busy.
  Layer.provide(SseServer.layer({
    maxConnections: 100_000,
    maxConnectionsPerClient: 100_000,
    load: { maxEventLoopDelay: false }
  })),
  Layer.provideMerge(NodeHttpServer.layerServer(createServer, { port: 0, host: "127.0.0.1" }))
)
const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
const address = Context.get(context, HttpServer.HttpServer).address
process.send?.({ port: "port" in address ? address.port : 0 })

const data = "x".repeat(100)
process.on("message", (message: { readonly publish: number; readonly burst: number }) => {
  const run = Effect.gen(function*() {
    for (let sent = 0; sent < message.publish; sent += message.burst) {
      const n = Math.min(message.burst, message.publish - sent)
      yield* Effect.forEach(Array.from({ length: n }), () => Hub.publish(hub, { data }), {
        concurrency: "unbounded",
        discard: true
      })
    }
  })
  void Effect.runPromise(run).then(() => process.send?.({ published: message.publish }))
})
