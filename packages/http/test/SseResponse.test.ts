import { describe, expect, it } from "@effect/vitest"
import { Hub, SseEvent } from "@sluice/core"
import { LeakTracker } from "@sluice/core/testing"
import { Cause, type Duration, Effect, Exit, Layer, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { SseClient, SseResponse, SseServer } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

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

describe("SseResponse: lifecycle options from user code", () => {
  it("an invalid lifecycle event name is a typed error when the route is defined, not on every request", () => {
    const producer = () => Stream.make(SseEvent.data("x"))
    expect(() => SseResponse.stream(producer, { lifecycle: { open: { event: "a\nb" } } })).toThrow(
      expect.objectContaining({ _tag: "InvalidEventError", reason: expect.stringContaining("lifecycle.open.event") })
    )
    expect(() => SseResponse.stream(producer, { lifecycle: { close: { event: "x\0" } } })).toThrow(
      expect.objectContaining({ _tag: "InvalidEventError", reason: expect.stringContaining("lifecycle.close.event") })
    )
  })

  it.live("open data that throws, or that JSON cannot carry, skips that event; the stream still runs", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({})
      const cyclic: Record<string, unknown> = {}
      cyclic["self"] = cyclic
      const { port } = yield* serve(Layer.mergeAll(
        HttpRouter.add(
          "GET",
          "/throws",
          SseResponse.hub(hub, {
            lifecycle: {
              retry: false,
              open: {
                data: () => {
                  throw new Error("bug in user code")
                }
              }
            }
          })
        ),
        HttpRouter.add(
          "GET",
          "/cyclic",
          SseResponse.stream(() => Stream.make(SseEvent.data("x")), {
            lifecycle: { retry: false, open: { data: () => cyclic }, close: { data: () => undefined } }
          })
        )
      ))
      const viaHub = yield* open(port, "/throws")
      expect(viaHub.status).toBe(200)
      expect(yield* until(() => hub.subscriberCount() === 1)).toBe(true)
      yield* Hub.publish(hub, { data: "live" })
      yield* viaHub.awaitFrames(1)
      expect(viaHub.events().map((e) => e.data)).toEqual(["live"])

      const viaStream = yield* open(port, "/cyclic")
      yield* viaStream.ended
      expect(viaStream.status).toBe(200)
      // Neither the open event (cyclic data) nor the close event (undefined data).
      expect(viaStream.events().map((e) => [e.event, e.data])).toEqual([["message", "x"]])
    }))
})

describe("SseResponse: the response head goes out when the stream starts", () => {
  // With no retry hint and no open event there is nothing to write: the head
  // must not wait for the first event (here there is none, and no heartbeat),
  // or EventSource's `open` and proxies would wait with it.
  const quiet = { lifecycle: { open: false, retry: false }, heartbeat: false } as const
  it.live("stream, hub and gzip routes with nothing to say yet answer at once", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({})
      const { port } = yield* serve(Layer.mergeAll(
        HttpRouter.add("GET", "/stream", SseResponse.stream(() => Stream.never, quiet)),
        HttpRouter.add("GET", "/hub", SseResponse.hub(hub, quiet)),
        HttpRouter.add("GET", "/gzip", SseResponse.stream(() => Stream.never, { ...quiet, compression: true }))
      ))
      for (
        const [path, headers] of [["/stream", {}], ["/hub", {}], ["/gzip", { "accept-encoding": "gzip" }]] as const
      ) {
        const client = yield* Effect.timeout(open(port, path, headers), "5 seconds")
        expect([path, client.status]).toEqual([path, 200])
      }
    }))
})

describe("SseResponse / SseServer / SseClient: options that cannot work", () => {
  const producer = () => Stream.make(SseEvent.data("x"))
  // As from untyped callers or configuration files: the types refuse these.
  const untyped = (text: string) => text as unknown as Duration.Input
  it("route options are refused when the route is defined, naming the option", () => {
    const refused = (options: SseResponse.Options, name: string) =>
      expect(() => SseResponse.stream(producer, options)).toThrow(new RegExp(`^SseResponse: invalid ${name}`))
    refused({ capacity: Number.NaN }, "capacity")
    refused({ capacity: 0 }, "capacity")
    refused({ heartbeat: untyped("every now and then") }, "heartbeat")
    refused({ writeTimeout: untyped("soon") }, "writeTimeout")
    refused({ lifecycle: { retry: { jitter: 2 } } }, "lifecycle.retry.jitter")
    refused({ lifecycle: { retry: { base: untyped("later") } } }, "lifecycle.retry.base")
    // Still fine:
    SseResponse.stream(producer, { heartbeat: false, writeTimeout: "5 seconds", capacity: 1 })
  })

  it.effect("SseServer limits that are not numbers fail the layer, naming the option", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(SseServer.layer({ maxConnections: Number.NaN })).pipe(Effect.scoped))
      expect(Exit.isFailure(exit) && String(Cause.squash(exit.cause))).toContain("SseServer: invalid maxConnections")
    }))

  it("SseClient.connect: a duration that is not one names the option", () => {
    expect(() => SseClient.connect("http://127.0.0.1:1/", { idleTimeout: untyped("bogus") })).toThrow(
      /^SseClient\.connect: invalid idleTimeout/
    )
  })
})
