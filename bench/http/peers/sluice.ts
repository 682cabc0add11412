/**
 * `sluice`: a sluice hub behind `SseResponse.hub` on NodeHttpServer, with the library's
 * defaults, as a user gets them: a hub with its default history (1 000 events) and ids it
 * assigns itself (`<epoch>-<seq>`, the harness's ids are not used), routes with the default
 * mailbox (64 events), `disconnect` strategy, heartbeats, write timeout, lifecycle events
 * (`connection_open` first; the harness's clients skip what is not a numbered message) and
 * tracing span. Only the server's connection limits are raised, to the scenarios' sizes
 * (the defaults, 10 000 streams and 64 per client address, would refuse them: every client
 * here comes from 127.0.0.x).
 *
 * Each event is validated and encoded once by the hub and offered to every subscriber; a
 * subscriber whose socket takes it at once gets it written at once (one write per burst).
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
  description: "sluice (library defaults): Hub + SseResponse.hub on NodeHttpServer; connection limits raised",
  start: async (options) => {
    const hub = Effect.runSync(Hub.make())
    const events = HttpRouter.add("GET", eventsPath, SseResponse.hub(hub))
    const app = HttpRouter.serve(events, { disableListenLog: true, disableLogger: true }).pipe(
      SseServer.withGracefulShutdown,
      Layer.provide(SseServer.layer({ maxConnections: 1_000_000, maxConnectionsPerClient: 1_000_000 })),
      Layer.provideMerge(NodeHttpServer.layerServer(createServer, { port: options?.port ?? 0, host: "127.0.0.1" }))
    )
    const scope = Effect.runSync(Scope.make())
    const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (!("port" in address)) throw new Error("sluice peer: expected a TCP address")
    return {
      port: address.port,
      publish: (_id, data) => {
        const published = Hub.publishUnsafe(hub, { data })
        if (Result.isFailure(published)) throw published.failure
      },
      subscribers: () => hub.subscriberCount()
    }
  }
}
