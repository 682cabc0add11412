// sluice's own client against sluice's server: a hub route whose connections
// are cut mid-stream; the client reconnects with Last-Event-ID and the hub
// replays, so the events arrive with no gap and no duplicate.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { describe, expect, it } from "@effect/vitest"
import { Hub } from "@sluice/core"
import { SseClient, SseResponse } from "@sluice/http"
import { TestServer } from "@sluice/http/testing"
import { Effect, Fiber, Schedule, Stream } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import type { Socket } from "node:net"

describe("SseClient against a sluice hub route", () => {
  it.live(
    "reconnects after cut connections and resumes by Last-Event-ID: no gap, no duplicate",
    () =>
      Effect.gen(function*() {
        const hub = yield* Hub.make({ history: { maxEvents: 10_000 } })
        const sockets = new Set<Socket>()
        let connections = 0
        const { port } = yield* TestServer.serve(
          HttpRouter.add(
            "GET",
            "/feed",
            Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
              connections++
              sockets.add(NodeHttpServerRequest.toIncomingMessage(request).socket)
              return SseResponse.hub(hub, { lifecycle: { retry: { base: 10, jitter: 0.2 } } })
            })
          )
        )
        // Publish continuously, and keep cutting every open connection.
        const publisher = yield* Effect.forkChild(Effect.gen(function*() {
          // From the client's first subscription on (before it, it would see only later events).
          yield* TestServer.until(() => hub.subscriberCount() > 0)
          for (let i = 1; i <= 200; i++) {
            yield* Hub.publish(hub, { event: "n", data: String(i) })
            yield* Effect.sleep(2)
          }
        }))
        const cutter = yield* Effect.forkChild(
          Effect.repeat(
            Effect.sync(() => {
              for (const socket of sockets) socket.destroy()
              sockets.clear()
            }),
            Schedule.spaced("60 millis")
          )
        )
        const received = yield* SseClient.connect(`http://127.0.0.1:${port}/feed`, { retry: 10 }).pipe(
          Stream.filter((e) => e.event === "n"),
          Stream.map((e) => Number(e.data)),
          Stream.take(200),
          Stream.runCollect,
          Effect.provide(NodeHttpClient.layerNodeHttp)
        )
        yield* Fiber.interrupt(cutter)
        yield* Fiber.join(publisher)
        expect(received).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
        expect(connections).toBeGreaterThan(2)
      }),
    30_000
  )
})
