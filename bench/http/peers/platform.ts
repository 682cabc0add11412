/**
 * `platform`: the floor under sluice's SSE routes, without sluice. NodeHttpServer and an
 * HttpRouter route that answers like `SseResponse` does with a socket it writes to itself (an
 * empty 200 whose head the platform writes, its `end()` skipped, the response then written by
 * hand and broadcast to from a Set, as `raw` does). What is left is the platform's per-request
 * work: a fiber, the router, the response's head. Not run by the scenarios (see `run.ts`);
 * `node bench/memory/instructions.ts --peers=raw,platform,sluice` compares it.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Context, Effect, Layer, Scope } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as Http from "node:http"
import { eventsPath, type Peer, sseHeaders } from "../Peer.ts"

const clients = new Set<Http.ServerResponse>()
const responseEnd = Http.ServerResponse.prototype.end
// The platform's `end()` after the head: skipped, the stream goes on.
function takeOver(this: Http.ServerResponse, ...args: Array<unknown>) {
  ;(this as unknown as { end: unknown }).end = responseEnd
  if (args[0] !== undefined) return responseEnd.apply(this, args as Parameters<typeof responseEnd>)
  this.write("retry: 3000\n\n")
  return this
}
const head = HttpServerResponse.empty({ status: 200, headers: sseHeaders })

export const peer: Peer = {
  description: "NodeHttpServer + HttpRouter, a route taking the response over like SseResponse (no sluice)",
  start: async (options) => {
    const events = HttpRouter.add(
      "GET",
      eventsPath,
      Effect.map(HttpServerRequest, (request) => {
        const res = NodeHttpServerRequest.toServerResponse(request) as Http.ServerResponse
        ;(res as unknown as { end: unknown }).end = takeOver
        clients.add(res)
        res.on("close", () => clients.delete(res))
        return head
      })
    )
    const app = HttpRouter.serve(events, { disableListenLog: true, disableLogger: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layerServer(Http.createServer, { port: options?.port ?? 0, host: "127.0.0.1" }))
    )
    const scope = Effect.runSync(Scope.make())
    const context = await Effect.runPromise(Layer.buildWithScope(app, scope))
    const address = Context.get(context, HttpServer.HttpServer).address
    if (!("port" in address)) throw new Error("platform peer: expected a TCP address")
    return {
      port: address.port,
      publish: (id, data) => {
        const frame = Buffer.from(`id: ${id}\ndata: ${data}\n\n`)
        for (const res of clients) res.write(frame)
      },
      subscribers: () => clients.size
    }
  }
}
