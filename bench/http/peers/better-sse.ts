/**
 * `better-sse`: one `Channel`, every client a `Session` registered on it, `channel.broadcast`.
 *
 * Library defaults (keep-alive comments, `retry` preamble) are kept; only the serializer is
 * the identity, because the harness hands over ready text rather than JSON values.
 */
import { createChannel, createSession } from "better-sse"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { eventsPath, type Peer } from "../Peer.ts"

export const peer: Peer = {
  description: "better-sse 0.16: Channel.broadcast to Sessions on node:http",
  start: (options) =>
    new Promise((resolve, reject) => {
      const channel = createChannel()
      const server = createServer((req, res) => {
        if (req.method !== "GET" || req.url !== eventsPath) {
          res.writeHead(404).end()
          return
        }
        createSession(req, res, { serializer: (data) => String(data), headers: { "x-accel-buffering": "no" } }).then(
          (session) => {
            // A client that left while the session was being set up is not registered.
            if (session.isConnected) channel.register(session)
          },
          () => res.destroy()
        )
      })
      server.once("error", reject)
      server.listen(options?.port ?? 0, "127.0.0.1", () =>
        resolve({
          port: (server.address() as AddressInfo).port,
          publish: (id, data) => {
            channel.broadcast(data, "message", { eventId: id })
          },
          subscribers: () => channel.sessionCount
        }))
    })
}
