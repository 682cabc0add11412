import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { Effect, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { SseAuth, SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve } from "../src/testing/TestServer.ts"

const once = Stream.make(SseEvent.data("hello"))

describe("SseResponse correlationId", () => {
  it.live("takes the client's X-Correlation-ID, echoes it, and puts it in the lifecycle events", () =>
    Effect.gen(function*() {
      const seen: Array<string | undefined> = []
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream((info) => {
          seen.push(info.correlationId)
          return once
        }, { correlationId: true, lifecycle: { retry: false } })
      ))
      const client = yield* open(port, "/e", { "x-correlation-id": "req-42.a:b_c" })
      yield* client.ended
      expect(client.headers["x-correlation-id"]).toBe("req-42.a:b_c")
      expect(seen).toEqual(["req-42.a:b_c"])
      const events = client.events()
      expect(JSON.parse(events[0]!.data)).toMatchObject({ correlation_id: "req-42.a:b_c" })
      expect(JSON.parse(events[2]!.data)).toMatchObject({ reason: "completed", correlation_id: "req-42.a:b_c" })
    }))

  it.live("falls back to X-Request-ID, and generates an id for a missing or unsafe one", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => once, { correlationId: true, lifecycle: { retry: false } })
      ))
      const fromRequestId = yield* open(port, "/e", { "x-request-id": "r-1" })
      const unsafe = yield* open(port, "/e", { "x-correlation-id": "<script>" })
      const tooLong = yield* open(port, "/e", { "x-correlation-id": "a".repeat(129) })
      const none = yield* open(port, "/e")
      expect(fromRequestId.headers["x-correlation-id"]).toBe("r-1")
      for (const client of [unsafe, tooLong, none]) {
        expect(client.headers["x-correlation-id"]).toMatch(/^[0-9a-f-]{36}$/)
      }
      expect(unsafe.headers["x-correlation-id"]).not.toBe(none.headers["x-correlation-id"])
    }))

  it.live("refusals carry the correlation id too", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => once, {
          correlationId: true,
          authorize: SseAuth.bearer(() => Effect.fail(new SseAuth.ForbiddenError({ detail: "no" })))
        })
      ))
      const client = yield* open(port, "/e", { "x-correlation-id": "c-7", authorization: "Bearer x" })
      yield* client.ended
      expect(client.status).toBe(403)
      expect(client.headers["x-correlation-id"]).toBe("c-7")
    }))

  it.live("without the option there is no header and the payloads are unchanged", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => once, { lifecycle: { retry: false } })
      ))
      const client = yield* open(port, "/e", { "x-correlation-id": "c-1" })
      yield* client.ended
      expect(client.headers["x-correlation-id"]).toBeUndefined()
      expect(Object.keys(JSON.parse(client.events()[0]!.data))).toEqual(["connection_id"])
    }))

  it("a maxLength that cannot work is refused when the route is defined", () => {
    expect(() => SseResponse.stream(() => once, { correlationId: { maxLength: 0 } })).toThrow(/correlationId.maxLength/)
  })
})

describe("SseResponse heartbeatEvent", () => {
  it.live("sends heartbeat events with an ISO timestamp at the interval, and no comments", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => Stream.never, {
          heartbeat: "20 millis",
          heartbeatEvent: true,
          lifecycle: { retry: false, open: false }
        })
      ))
      const client = yield* open(port, "/e")
      yield* client.awaitFrames(3)
      const beats = client.events()
      expect(beats.map((e) => e.event)).toEqual(["heartbeat", "heartbeat", "heartbeat"])
      for (const beat of beats) {
        const { timestamp } = JSON.parse(beat.data)
        expect(new Date(timestamp).toISOString()).toBe(timestamp)
      }
      expect(client.text()).not.toMatch(/^:/m)
    }))

  it.live("a custom event name and data", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => Stream.never, {
          heartbeat: "20 millis",
          heartbeatEvent: { event: "ping", data: () => ({ ok: true }) },
          lifecycle: { retry: false, open: false }
        })
      ))
      const client = yield* open(port, "/e")
      yield* client.awaitFrames(1)
      expect(client.events()[0]).toMatchObject({ event: "ping", data: "{\"ok\":true}" })
    }))

  it("an invalid event name is refused when the route is defined", () => {
    expect(() => SseResponse.stream(() => once, { heartbeatEvent: { event: "a\nb" } })).toThrow(/heartbeatEvent.event/)
  })
})
