/**
 * `effect`: plain Effect 4, written the way the docs suggest. One unbounded `PubSub` of
 * `Sse.Event`s; each request subscribes (in its request scope), maps the subscription through
 * effect's `Sse` encoder and `Stream.encodeText`, and returns `HttpServerResponse.stream` on
 * `NodeHttpServer`. Each subscriber therefore encodes every event itself.
 *
 * Each stream starts with a `retry:` frame (as better-sse's does): NodeHttpServer sends the
 * response head only with the first body chunk, so without it a client would not see the
 * stream open (nor would an EventSource fire `open`) until the first event.
 *
 * Only the modules used are imported (the `@effect/platform-node` barrel costs memory).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Duration, Effect, Layer, PubSub, Scope, Stream } from "effect"
import { Sse } from "effect/encoding"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import { eventsPath, type Peer, sseHeaders } from "../Peer.ts"

export const peer: Peer = {
  description: "effect 4.1: PubSub + per-client Stream (Sse.encoder) + HttpServerResponse.stream on NodeHttpServer",
  start: async (options) => {
    const pubsub = Effect.runSync(PubSub.unbounded<Sse.Event>())
    let subscribers = 0
    const retry = new Sse.Retry({ duration: Duration.seconds(2), lastEventId: undefined })
    const events = HttpRouter.add(
      "GET",
      eventsPath,
      Effect.gen(function*() {
        const subscription = yield* PubSub.subscribe(pubsub)
        yield* Effect.acquireRelease(Effect.sync(() => subscribers++), () => Effect.sync(() => subscribers--))
        const body = Stream.make<Array<Sse.AnyEvent>>(retry).pipe(
          Stream.concat(Stream.fromSubscription(subscription)),
          Stream.map(Sse.encoder.write),
          Stream.encodeText
        )
        return HttpServerResponse.stream(body, {
          contentType: sseHeaders["content-type"],
          headers: { "cache-control": sseHeaders["cache-control"], "x-accel-buffering": "no" }
        })
      })
    )
    const app = HttpRouter.serve(events, { disableListenLog: true, disableLogger: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layerServer(createServer, { port: options?.port ?? 0, host: "127.0.0.1" }))
    )
    // The scope lives as long as the server process.
    const scope = Effect.runSync(Scope.make())
    const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (!("port" in address)) throw new Error("effect peer: expected a TCP address")
    return {
      port: address.port,
      publish: (id, data) => {
        PubSub.publishUnsafe(pubsub, { _tag: "Event", event: "message", id, data })
      },
      subscribers: () => subscribers
    }
  }
}
