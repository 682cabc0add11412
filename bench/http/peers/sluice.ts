/**
 * `sluice`: a sluice hub behind `SseResponse.hub` on NodeHttpServer. Each event is validated and
 * encoded once by the hub and offered to every subscriber's bounded mailbox; each subscriber's
 * writer takes everything waiting and writes it as one chunk. The route is what a user writes,
 * with the defaults (mailbox of 64 frames, `disconnect` strategy) except a mailbox large enough for
 * the harness's bursts of 256 events, and no `connection_open` event (the harness's clients
 * expect only numbered messages; the stream still starts with a `retry:` hint).
 *
 * Only the modules used are imported.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Hub } from "@sluice/core"
import { SseResponse, SseServer } from "@sluice/http"
import { Context, Effect, Layer, Result, Scope } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { createServer } from "node:http"
import { eventsPath, type Peer } from "../Peer.ts"

export const peer: Peer = {
  description: "sluice: Hub (encode once, per-subscriber mailbox) + SseResponse.hub on NodeHttpServer",
  start: async () => {
    const hub = Effect.runSync(Hub.make({ history: false }))
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
    const scope = Effect.runSync(Scope.make())
    const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (!("port" in address)) throw new Error("sluice peer: expected a TCP address")
    return {
      port: address.port,
      publish: (id, data) => {
        const published = Hub.publishUnsafe(hub, { id, data })
        if (Result.isFailure(published)) throw published.failure
      },
      subscribers: () => hub.subscriberCount()
    }
  }
}
