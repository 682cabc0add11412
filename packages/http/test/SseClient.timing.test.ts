// Reconnection timing on the TestClock (effect's test clock drives the client's sleeps and idle
// watchdog; the server is real). Jitter is made deterministic with a fixed Random service.
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { LeakTracker, TestTime } from "@sluice/core/testing"
import { Clock, Effect, Fiber, Queue, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import { SseClient } from "../src/index.ts"
import { backoffMillis } from "../src/internal/client.ts"
import { scriptedServer, sseHead } from "./SseClient.server.ts"

const fixedRandom = (draw: number): Random.Random => ({ nextDoubleUnsafe: () => draw, nextIntUnsafe: () => 0 })

interface Seen {
  readonly state: SseClient.ConnectionState
  readonly at: number
}

/** Runs a client in the background, recording states (with test-clock time) and events. */
const runClient = (url: string, options: SseClient.ConnectOptions = {}) =>
  Effect.gen(function*() {
    const states = yield* Queue.unbounded<Seen>()
    const events = yield* Queue.unbounded<SseEvent.Event>()
    const onStateChange = (state: SseClient.ConnectionState) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => Queue.offer(states, { state, at }))
    const fiber = yield* Effect.forkChild(
      SseClient.connect(url, { ...options, onStateChange }).pipe(
        Stream.runForEach((e) => Queue.offer(events, e))
      )
    )
    const next = <Tag extends SseClient.ConnectionState["_tag"]>(tag: Tag) =>
      Effect.map(Queue.take(states), (seen) => {
        expect(seen.state._tag).toBe(tag)
        return seen as { readonly state: Extract<SseClient.ConnectionState, { _tag: Tag }>; readonly at: number }
      })
    /**
     * Takes the next `Reconnecting`, checks its delay, proves nothing happens 1 ms before the delay
     * is over, and returns the `Connecting` that follows exactly at the delay.
     */
    const waitOut = (delayMillis: number) =>
      Effect.gen(function*() {
        const reconnecting = yield* next("Reconnecting")
        expect(reconnecting.state.delayMillis).toBe(delayMillis)
        yield* TestTime.settle()
        yield* TestClock.adjust(delayMillis - 1)
        yield* TestTime.settle()
        expect(yield* Queue.size(states)).toBe(0)
        yield* TestClock.adjust(1)
        const connecting = yield* next("Connecting")
        expect(connecting.at).toBe(reconnecting.at + delayMillis)
        return { reconnecting, connecting }
      })
    return { fiber, next, waitOut, nextEvent: Queue.take(events) }
  })

describe("SseClient backoff (TestClock)", () => {
  it("backoffMillis: exact R after a good connection, then R plus full jitter, capped", () => {
    expect(backoffMillis(3000, 0, 30_000, 0.99)).toBe(3000)
    expect([1, 2, 3, 4, 5].map((k) => backoffMillis(1000, k, 5000, 0.5))).toStrictEqual([1500, 2500, 3000, 3000, 3000])
    expect([1, 2, 3].map((k) => backoffMillis(1000, k, 5000, 0))).toStrictEqual([1000, 1000, 1000])
    // retry: 0 still backs off on failures, from a 1 s base.
    expect([0, 1, 2].map((k) => backoffMillis(0, k, 30_000, 1))).toStrictEqual([0, 2000, 4000])
    // A server retry above the cap is honoured.
    expect(backoffMillis(60_000, 3, 30_000, 0.5)).toBe(60_000)
  })

  it.effect("attempts without events back off exponentially with jitter and a cap; an event resets it", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        if (ex.n <= 4) ex.res.end(": nothing for you\n\n")
        else if (ex.n === 5) ex.res.end("id: 5\ndata: finally\n\n")
        else ex.res.write("data: steady\n\n")
      })
      const client = yield* runClient(server.url(), { retry: "1 second", maxDelay: "5 seconds" })
      expect(yield* client.next("Connecting")).toMatchObject({ state: { attempt: 1 }, at: 0 })
      yield* client.next("Open")
      const timeline: Array<[number, number]> = []
      for (const [attempt, delay] of [[2, 1500], [3, 2500], [4, 3000], [5, 3000]] as const) {
        const { connecting } = yield* client.waitOut(delay)
        expect(connecting.state.attempt).toBe(attempt)
        timeline.push([connecting.state.attempt, connecting.at])
        yield* client.next("Open")
      }
      expect(timeline).toStrictEqual([[2, 1500], [3, 4000], [4, 7000], [5, 10_000]])
      expect(yield* client.nextEvent).toStrictEqual(SseEvent.make({ id: "5", data: "finally" }))
      // The fifth connection delivered an event: back to exactly R, attempt 1.
      const { connecting } = yield* client.waitOut(1000)
      expect(connecting).toMatchObject({ state: { attempt: 1 }, at: 11_000 })
      expect((yield* server.request(6)).lastEventId).toBe("5")
      expect(yield* client.nextEvent).toStrictEqual(SseEvent.make({ id: "5", data: "steady" }))
      yield* Fiber.interrupt(client.fiber)
    }).pipe(
      Effect.provide(NodeHttpClient.layerNodeHttp),
      Effect.provideService(Random.Random, fixedRandom(0.5))
    ))

  it.effect("retry: fields change the reconnection time, from the next reconnection on", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        if (ex.n === 1) ex.res.end("retry: 250\ndata: one\n\n")
        else if (ex.n === 2) ex.res.end("data: two\nretry: 4000\n\nretry: x\n\n")
        else ex.res.write("data: three\n\n")
      })
      const client = yield* runClient(server.url(), { retry: "10 seconds" })
      yield* client.next("Connecting")
      yield* client.next("Open")
      const first = yield* client.waitOut(250)
      expect(first.connecting.at).toBe(250)
      yield* client.next("Open")
      const second = yield* client.waitOut(4000)
      expect(second.connecting.at).toBe(4250)
      const events = yield* Effect.forEach([1, 2, 3], () => client.nextEvent)
      expect(events.map((e) => e.data)).toStrictEqual(["one", "two", "three"])
      yield* Fiber.interrupt(client.fiber)
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp), Effect.provideService(Random.Random, fixedRandom(0.5))))

  it.effect("retryStatus: 5xx and 429 are retried with backoff, no sooner than Retry-After (seconds or date)", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        if (ex.n === 1) ex.res.writeHead(503, { "retry-after": "7" }).end()
        else if (ex.n === 2) ex.res.writeHead(429, { "retry-after": "Thu, 01 Jan 1970 00:00:20 GMT" }).end()
        else if (ex.n === 3) ex.res.writeHead(500).end()
        else {
          sseHead(ex.res)
          ex.res.write("data: up\n\n")
        }
      })
      const client = yield* runClient(server.url(), { retry: "1 second", retryStatus: true })
      yield* client.next("Connecting")
      const a = yield* client.waitOut(7000) // backoff would be 1500
      expect(a.reconnecting.state.error).toMatchObject({ _tag: "SseStatusError", status: 503 })
      const b = yield* client.waitOut(13_000) // until 20 s on the clock; backoff would be 2500
      expect(b.connecting.at).toBe(20_000)
      const c = yield* client.waitOut(4500) // no Retry-After: plain backoff, third failure
      expect(c.reconnecting.state.error).toMatchObject({ status: 500 })
      yield* client.next("Open")
      expect(yield* client.nextEvent).toStrictEqual(SseEvent.data("up"))
      yield* Fiber.interrupt(client.fiber)
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp), Effect.provideService(Random.Random, fixedRandom(0.5))))

  it.effect("time spent blocked on a slow consumer is not idle time", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        ex.res.write("data: 1\n\ndata: 2\n\ndata: 3\n\n")
      })
      const states: Array<SseClient.ConnectionState["_tag"]> = []
      const pull = yield* Stream.toPull(SseClient.connect(server.url(), {
        bufferSize: 1,
        idleTimeout: "10 seconds",
        onStateChange: (s) => Effect.sync(() => void states.push(s._tag))
      }))
      expect(yield* pull).toStrictEqual([SseEvent.data("1")])
      // The client now holds events 2 and 3 and waits for room, not for bytes.
      yield* TestTime.advance("1 minute", "1 second")
      expect(states).toStrictEqual(["Connecting", "Open"])
      const rest = [...(yield* pull), ...(yield* pull)]
      expect(rest).toStrictEqual([SseEvent.data("2"), SseEvent.data("3")])
      // From here it waits for bytes: idle after 10 s.
      yield* TestTime.advance("10 seconds", "1 second")
      expect(states).toStrictEqual(["Connecting", "Open", "Reconnecting"])
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.effect("idle timeout: a connection silent for T is closed and replaced; waiting for headers counts too", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        if (ex.n === 2) return // never answers: headers never come
        sseHead(ex.res)
        ex.res.write(ex.n === 1 ? "id: 1\ndata: then silence\n\n" : "data: fresh\n\n")
      })
      const tracker = LeakTracker.make()
      const client = yield* tracker.track(runClient(server.url(), { retry: "1 second", idleTimeout: "10 seconds" }))
      yield* client.next("Connecting")
      yield* client.next("Open")
      expect(yield* client.nextEvent).toStrictEqual(SseEvent.make({ id: "1", data: "then silence" }))
      yield* TestTime.settle()
      yield* TestClock.adjust(9_999)
      yield* TestTime.settle()
      const first = yield* server.request(1)
      expect(server.exchanges).toHaveLength(1)
      yield* TestClock.adjust(1)
      const idle = yield* client.next("Reconnecting")
      expect(idle).toMatchObject({ at: 10_000, state: { delayMillis: 1000, error: { reason: "idle-timeout" } } })
      yield* first.closed // the client closed the silent connection
      yield* TestTime.settle()
      yield* TestClock.adjust(1000)
      yield* client.next("Connecting")
      const second = yield* server.request(2)
      expect(second.lastEventId).toBe("1")
      // No headers for 10 s: also idle. The attempt delivered nothing, so this is failure 1.
      yield* TestTime.settle()
      yield* TestClock.adjust(10_000)
      const noHeaders = yield* client.next("Reconnecting")
      expect(noHeaders).toMatchObject({ at: 21_000, state: { attempt: 2, error: { reason: "idle-timeout" } } })
      yield* second.closed
      yield* TestTime.settle()
      yield* TestClock.adjust(noHeaders.state.delayMillis)
      yield* client.next("Connecting")
      yield* client.next("Open")
      expect(yield* client.nextEvent).toStrictEqual(SseEvent.make({ id: "1", data: "fresh" }))
      yield* Fiber.interrupt(client.fiber)
      yield* tracker.assertNoLeaks()
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp), Effect.provideService(Random.Random, fixedRandom(0.5))))
})
