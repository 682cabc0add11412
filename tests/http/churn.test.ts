// Disconnect churn: thousands of clients connect, read 1-3 events and vanish
// while producers run. Afterwards the server is back where it started: no
// open stream, no fiber, no socket handle left behind.
import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { LeakTracker } from "@sluice/core/testing"
import { SseResponse } from "@sluice/http"
import { TestClient, TestServer } from "@sluice/http/testing"
import { Effect, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length

describe("disconnect churn", () => {
  it.live("5 000 connect / read 1-3 events / destroy cycles leave nothing behind", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      let producersStarted = 0
      let producersFinalized = 0
      const { port, server } = yield* TestServer.serve(
        HttpRouter.add(
          "GET",
          "/events",
          SseResponse.stream(() =>
            Stream.fromSchedule(Schedule.spaced("1 millis")).pipe(
              Stream.map((n) => SseEvent.make({ id: String(n), data: "tick" })),
              Stream.onStart(Effect.sync(() => producersStarted++)),
              Stream.ensuring(Effect.sync(() => producersFinalized++))
            )
          )
        ),
        { tracker: tracker.layer, maxConnectionsPerClient: 1_000 }
      )
      const baselineFibers = tracker.live()
      const baselineSockets = sockets()

      const cycles = 5_000
      yield* Effect.forEach(
        Array.from({ length: cycles }, (_, i) => i),
        (i) =>
          Effect.scoped(Effect.gen(function*() {
            const client = yield* TestClient.open(port, "/events")
            // retry hint + connection_open, then 1-3 events
            yield* client.awaitFrames(2 + (i % 3) + 1)
            client.destroy()
          })),
        { concurrency: 25, discard: true }
      )

      expect(yield* TestServer.until(() => server.open() === 0 && producersFinalized === producersStarted)).toBe(true)
      expect(producersStarted).toBe(cycles)
      yield* tracker.assertNoLeaks({ baseline: baselineFibers, yields: 100_000 })
      expect(yield* TestServer.until(() => sockets() <= baselineSockets)).toBe(true)
    }), 120_000)
})
