// Disconnect churn: thousands of clients connect, read 1-3 events and vanish
// while a publisher runs. Afterwards the server is back where it started: no
// open stream, no subscriber, no fiber, no socket handle left behind.
import { describe, expect, it } from "@effect/vitest"
import { Hub } from "@sluice/core"
import { LeakTracker } from "@sluice/core/testing"
import { SseResponse } from "@sluice/http"
import { TestClient, TestServer } from "@sluice/http/testing"
import { Effect, Fiber, Schedule } from "effect"
import { HttpRouter } from "effect/http"

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length

describe("disconnect churn", () => {
  it.live("5 000 connect / read 1-3 events / destroy cycles leave nothing behind", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const hub = yield* Hub.make({ history: { maxEvents: 100 } })
      const { port, server } = yield* TestServer.serve(
        HttpRouter.add("GET", "/events", SseResponse.hub(hub)),
        { tracker: tracker.layer, maxConnectionsPerClient: 1_000 }
      )
      // The producer: a publisher that runs for the whole test.
      const publisher = yield* Effect.forkChild(
        Effect.repeat(Hub.publish(hub, { event: "tick", data: "t" }), Schedule.spaced("1 millis"))
      )
      const baselineFibers = tracker.live()
      const baselineSockets = sockets()

      const cycles = 5_000
      yield* Effect.forEach(
        Array.from({ length: cycles }, (_, i) => i),
        (i) =>
          Effect.scoped(Effect.gen(function*() {
            const client = yield* TestClient.open(port, "/events")
            // retry hint + connection_open, then 1-3 live events
            yield* client.awaitFrames(2 + (i % 3) + 1)
            client.destroy()
          })),
        { concurrency: 25, discard: true }
      )

      expect(yield* TestServer.until(() => server.open() === 0 && hub.subscriberCount() === 0)).toBe(true)
      expect(hub.stats().published).toBeGreaterThan(0)
      yield* Fiber.interrupt(publisher)
      yield* tracker.assertNoLeaks({ baseline: baselineFibers, yields: 100_000 })
      expect(yield* TestServer.until(() => sockets() <= baselineSockets)).toBe(true)
    }), 120_000)
})
