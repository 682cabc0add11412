/**
 * `sluice-redis`: the `sluice` peer's route (SseResponse.hub, same options), with the hub over a
 * Redis log (`@sluice/redis`): every publish is appended to the topic's Redis stream (the events
 * of one burst in one script call) and comes back to this node through its Pub/Sub subscription,
 * where the hub fans it out. What it measures against `sluice` is what the Redis round trip and
 * the tail cost a node.
 *
 * Needs a redis-server: `REDIS_URL`, or one started here on a free port (no persistence),
 * stopped when this process exits. Runs only when asked for (`--peers=sluice,sluice-redis`);
 * `bench/redis/run.ts` runs it with the other Redis figures.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Hub } from "@sluice/core"
import { SseResponse, SseServer } from "@sluice/http"
import { RedisConnection, RedisLog } from "@sluice/redis"
import { RedisServer } from "@sluice/redis/testing"
import { Context, Effect, Layer, Scope } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import { eventsPath, type Peer } from "../Peer.ts"

export const peer: Peer = {
  description: "sluice over Redis: the sluice route, its hub over a RedisLog (one script per burst, back via Pub/Sub)",
  start: async () => {
    const scope = Effect.runSync(Scope.make())
    const url = process.env["REDIS_URL"] ?? (await Effect.runPromise(
      Effect.map(Scope.provide(RedisServer.make(), scope), (server) => {
        // A child of this process: stop it when this process ends.
        process.on("exit", () => process.kill(server.pid() ?? 0, "SIGKILL"))
        return server.url
      })
    ))
    // A prefix of its own: every run starts from an empty topic.
    const prefix = `bench-${process.pid}-${Date.now().toString(36)}`
    const logs = RedisLog.layer({ prefix }).pipe(Layer.provide(RedisConnection.layer({ url })))
    // No history, as the sluice peer: the stream is trimmed to nothing at each append.
    const services = await Effect.runPromise(Layer.buildWithScope(logs, scope))
    const hub = await Effect.runPromise(
      Scope.provide(Effect.provideContext(RedisLog.hub("events", { history: false }), services), scope)
    )
    const events = HttpRouter.add(
      "GET",
      eventsPath,
      SseResponse.hub(hub, { capacity: 1024, lifecycle: { open: false } })
    )
    const app = HttpRouter.serve(events, { disableListenLog: true, disableLogger: true }).pipe(
      SseServer.withGracefulShutdown,
      Layer.provide(SseServer.layer({ maxConnections: 100_000, maxConnectionsPerClient: 100_000 })),
      Layer.provideMerge(NodeHttpServer.layerServer(createServer, { port: 0, host: "127.0.0.1" }))
    )
    const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (!("port" in address)) throw new Error("sluice-redis peer: expected a TCP address")
    // The harness publishes a burst of calls, then yields: the burst goes out as one run of
    // publishes, which the hub appends in one call.
    let burst: Array<Hub.EventInput> = []
    const flush = () => {
      const run = burst
      burst = []
      Effect.runFork(Effect.forEach(run, (e) => Hub.publish(hub, e), { concurrency: "unbounded", discard: true }))
    }
    return {
      port: address.port,
      publish: (id, data) => {
        if (burst.length === 0) queueMicrotask(flush)
        burst.push({ id, data })
      },
      subscribers: () => hub.subscriberCount()
    }
  }
}
