import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { LeakTracker } from "@sluice/core/testing"
import { Effect, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve } from "../src/testing/TestServer.ts"

const numbered = (n: number) =>
  Stream.fromIterable(Array.from({ length: n }, (_, i) => SseEvent.make({ id: String(i + 1), data: `event ${i + 1}` })))

describe("SseResponse.stream", () => {
  it.live("headers, lifecycle events, the producer's events, then connection_close", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add("GET", "/events", SseResponse.stream(() => numbered(3))))
      const client = yield* open(port, "/events")
      yield* client.ended
      expect(client.status).toBe(200)
      expect(client.headers["content-type"]).toBe("text/event-stream; charset=utf-8")
      expect(client.headers["cache-control"]).toBe("no-cache, no-transform")
      expect(client.headers["x-accel-buffering"]).toBe("no")
      const events = client.events()
      expect(events[0]?.retry).toBeGreaterThanOrEqual(2400)
      expect(events[0]?.retry).toBeLessThanOrEqual(3600)
      expect(events[1]?.event).toBe("connection_open")
      const { connection_id } = JSON.parse(events[1]!.data)
      expect(connection_id).toMatch(/^[0-9a-f-]{36}$/)
      expect(events.slice(2, 5).map((e) => [e.id, e.data])).toEqual([["1", "event 1"], ["2", "event 2"], [
        "3",
        "event 3"
      ]])
      expect(events[5]).toMatchObject({ event: "connection_close" })
      expect(JSON.parse(events[5]!.data)).toEqual({ reason: "completed", connection_id })
      expect(events).toHaveLength(6)
    }))

  it.live("each event reaches the socket on its own: the first read holds exactly the first event", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/events",
        SseResponse.stream(() => Stream.concat(Stream.make(SseEvent.data("first")), Stream.never), {
          lifecycle: { open: false, retry: false }
        })
      ))
      const client = yield* open(port, "/events")
      yield* client.awaitFrames(1)
      expect(client.chunks[0]?.toString()).toBe("data: first\n\n")
    }))

  it.live("a producer failure sends an error event with a safe message, then connection_close failed", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/events",
        SseResponse.stream(() => Stream.concat(numbered(1), Stream.fail(new Error("secret detail"))), {
          lifecycle: { retry: false }
        })
      ))
      const client = yield* open(port, "/events")
      yield* client.ended
      const events = client.events()
      expect(events.map((e) => e.event)).toEqual(["connection_open", "message", "error", "connection_close"])
      expect(client.text()).not.toContain("secret detail")
      expect(JSON.parse(events[3]!.data).reason).toBe("failed")
    }))

  it.live("a client disconnect interrupts the producer and leaves no fiber behind", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      let finalized = 0
      const { port } = yield* serve(
        HttpRouter.add(
          "GET",
          "/events",
          SseResponse.stream(() =>
            // An endless producer, paced so the in-process client is not starved.
            Stream.fromSchedule(Schedule.spaced("1 millis")).pipe(
              Stream.map((i) => SseEvent.data(String(i))),
              Stream.ensuring(Effect.sync(() => finalized++))
            )
          )
        ),
        { tracker: tracker.layer }
      )
      for (let round = 1; round <= 3; round++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const client = yield* open(port, "/events")
          yield* client.awaitFrames(round + 2)
          client.destroy()
        }))
        yield* tracker.assertNoLeaks({ yields: 5000 })
        expect(finalized).toBe(round)
      }
    }))
})
