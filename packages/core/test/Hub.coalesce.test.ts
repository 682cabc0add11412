import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import { Hub } from "../src/index.ts"
import { TestSink } from "../src/testing.ts"

// A turn of the event loop: the in-memory log hands a run's burst to the hub
// at its end (a microtask), and Node writes on the next tick.
const nextTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const publish = (hub: Hub.Hub, data: string) =>
  Effect.sync(() => {
    const published = Hub.publishUnsafe(hub, { data })
    if (Result.isFailure(published)) throw published.failure
  })

describe("Hub: write coalescing", () => {
  it.effect("events within the window of the last delivery go out together, in one write per subscriber", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", coalesce: "2 millis" })
      const sinks = [yield* TestSink.make(), yield* TestSink.make()]
      for (const sink of sinks) yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false })
      // After a quiet spell: at once, at the end of its run.
      yield* publish(hub, "a")
      yield* nextTurn
      for (const sink of sinks) yield* sink.awaitWrites(1)
      // 1 ms after that delivery, in runs of their own: they wait for the window's end.
      yield* TestClock.adjust("1 millis")
      yield* publish(hub, "b")
      yield* nextTurn
      yield* publish(hub, "c")
      yield* nextTurn
      for (const sink of sinks) expect(sink.chunks()).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      for (const sink of sinks) {
        yield* sink.awaitWrites(2)
        expect(sink.chunks().map((c) => new TextDecoder().decode(c))).toEqual([
          "id: e-1\ndata: a\n\n",
          "id: e-2\ndata: b\n\nid: e-3\ndata: c\n\n"
        ])
      }
      // After a quiet spell longer than the window: at once again.
      yield* TestClock.adjust("10 millis")
      yield* publish(hub, "d")
      yield* nextTurn
      for (const sink of sinks) yield* sink.awaitWrites(3)
    }))

  it.effect("with `coalesce: false`, every run is written at its end", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", coalesce: false })
      const sink = yield* TestSink.make()
      yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false })
      yield* publish(hub, "a")
      yield* nextTurn
      yield* sink.awaitWrites(1)
      yield* TestClock.adjust("1 millis")
      yield* publish(hub, "b")
      yield* nextTurn
      yield* sink.awaitWrites(2)
      expect(sink.chunks()).toHaveLength(2)
    }))

  it.effect("a close writes the events still waiting before its close frames", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const sink = yield* TestSink.make()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false })
      yield* publish(hub, "a")
      yield* nextTurn
      yield* sink.awaitWrites(1)
      yield* TestClock.adjust("1 millis")
      yield* publish(hub, "b")
      yield* nextTurn
      expect(sink.chunks()).toHaveLength(1)
      yield* sub.connection.close("done", [{ _tag: "Event", event: "bye", data: "x" }])
      const outcome = yield* sub.outcome
      expect(outcome).toMatchObject({ _tag: "Closed", reason: "done" })
      expect(sink.text()).toBe("id: e-1\ndata: a\n\nid: e-2\ndata: b\n\nevent: bye\ndata: x\n\n")
    }))

  it.effect("a backpressured subscriber gets every event at once (its publisher waits for it)", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const sink = yield* TestSink.make()
      yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false, strategy: "suspend" })
      yield* Hub.publish(hub, { data: "a" })
      yield* sink.awaitWrites(1)
      yield* TestClock.adjust("1 millis")
      const second = yield* Effect.forkChild(Hub.publish(hub, { data: "b" }))
      expect(yield* Fiber.join(second)).toMatchObject({ seq: 2, subscribers: 1 })
      yield* sink.awaitWrites(2)
    }))

  it("a coalescing window that is not a duration is refused when the hub is made", () => {
    expect(() => Effect.runSync(Hub.make({ coalesce: "soon" as never }))).toThrow(/coalesce/)
  })
})
