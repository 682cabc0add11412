/**
 * `hono`: Hono on `@hono/node-server`, one `streamSSE` per client kept in a Set; a broadcast
 * calls `writeSSE` on each stream (without awaiting, as a broadcast loop would).
 */
import { serve } from "@hono/node-server"
import { Hono } from "hono"
import { type SSEStreamingApi, streamSSE } from "hono/streaming"
import type { AddressInfo } from "node:net"
import { eventsPath, type Peer } from "../Peer.ts"

export const peer: Peer = {
  description: "hono 4.13 + @hono/node-server 2.1: streamSSE per client, writeSSE to each",
  start: (options) =>
    new Promise((resolve) => {
      const streams = new Set<SSEStreamingApi>()
      const app = new Hono()
      app.get(eventsPath, (c) => {
        c.header("x-accel-buffering", "no")
        return streamSSE(c, (stream) =>
          new Promise<void>((done) => {
            streams.add(stream)
            stream.onAbort(() => {
              streams.delete(stream)
              done()
            })
          }))
      })
      serve({ fetch: app.fetch, port: options?.port ?? 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
        resolve({
          port: info.port,
          publish: (id, data) => {
            for (const stream of streams) void stream.writeSSE({ id, data })
          },
          subscribers: () => streams.size
        }))
    })
}
