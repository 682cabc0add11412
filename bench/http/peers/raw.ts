/**
 * `raw`: node:http with frames written by hand, the practical upper bound.
 *
 * Each event is serialized once; the events of one burst (everything published before the
 * next microtask) are joined into one Buffer, and that same Buffer is written to every client:
 * one write per event per client when events arrive one per event-loop turn. Every client
 * gets a heartbeat comment every 15 s (one timer for all).
 */
import { createServer, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { eventsPath, heartbeatMs, type Peer, sseHeaders } from "../Peer.ts"

/** Starts raw with `schedule` deciding when a burst is written (raw: at the next microtask). */
export const rawPeer = (schedule: (flush: () => void) => void): Peer["start"] => (options) =>
  new Promise((resolve, reject) => {
    const clients = new Set<ServerResponse>()
    let pending = ""
    let scheduled = false
    const flush = () => {
      scheduled = false
      const buffer = Buffer.from(pending, "latin1")
      pending = ""
      for (const res of clients) res.write(buffer)
    }
    const heartbeat = Buffer.from(":\n\n")
    setInterval(() => {
      for (const res of clients) res.write(heartbeat)
    }, heartbeatMs).unref()
    const server = createServer((req, res) => {
      if (req.method !== "GET" || req.url !== eventsPath) {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, sseHeaders)
      res.flushHeaders()
      clients.add(res)
      res.on("close", () => clients.delete(res))
    })
    server.once("error", reject)
    server.listen(options?.port ?? 0, "127.0.0.1", () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        publish: (id, data) => {
          pending += `id: ${id}\ndata: ${data}\n\n`
          if (!scheduled) {
            scheduled = true
            schedule(flush)
          }
        },
        subscribers: () => clients.size
      }))
  })

export const peer: Peer = {
  description: "node:http, one serialization per event, one Buffer per burst written to every client",
  start: rawPeer(queueMicrotask)
}
