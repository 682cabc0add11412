// 1 000 concurrent clients on one topic receive every event, in order.
import { describe, expect, it } from "@effect/vitest"
import { Hub } from "@sluice/core"
import { SseResponse } from "@sluice/http"
import { TestClient, TestServer } from "@sluice/http/testing"
import { Effect } from "effect"
import { HttpRouter } from "effect/http"

describe("fan-out over HTTP", () => {
  it.live("1 000 clients on one hub each receive all 300 events in order", () =>
    Effect.gen(function*() {
      const clients = 1_000
      const events = 300
      const hub = yield* Hub.make({ history: false })
      const { port, server } = yield* TestServer.serve(
        HttpRouter.add("GET", "/prices", SseResponse.hub(hub, { strategy: "suspend", capacity: 64 })),
        { maxConnectionsPerClient: clients }
      )
      const opened = yield* Effect.forEach(
        Array.from({ length: clients }),
        () => Effect.tap(TestClient.open(port, "/prices"), (c) => c.awaitFrames(2)),
        { concurrency: 100 }
      )
      expect(yield* TestServer.until(() => hub.subscriberCount() === clients)).toBe(true)

      for (let i = 1; i <= events; i++) {
        yield* Hub.publish(hub, { event: "price", data: JSON.stringify({ i }) })
        // let sockets drain between bursts of 50, like a real feed
        if (i % 50 === 0) yield* Effect.yieldNow
      }
      yield* Effect.forEach(opened, (c) => c.awaitFrames(2 + events), { discard: true })

      const expected = Array.from({ length: events }, (_, k) => JSON.stringify({ i: k + 1 }))
      for (const c of opened) {
        expect(c.events().filter((e) => e.event === "price").map((e) => e.data)).toEqual(expected)
      }
      // All of them leave: the hub is back to no subscriber.
      for (const c of opened) c.destroy()
      expect(yield* TestServer.until(() => server.open() === 0 && hub.subscriberCount() === 0)).toBe(true)
    }), 120_000)
})
