import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { Hub } from "../src/index.ts"
import { TestSink } from "../src/testing.ts"

describe("Hub.publishUnsafe", () => {
  it.effect("publishes synchronously with the same validation, ids and fan-out", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ maxEventBytes: 64, allowedEvents: ["tick"] })
      const sink = yield* TestSink.make()
      yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false })
      const first = Hub.publishUnsafe(hub, { event: "tick", data: "1" })
      expect(Result.isSuccess(first) && first.success).toMatchObject({ seq: 1, subscribers: 1 })
      const refused = Hub.publishUnsafe(hub, { event: "other", data: "x" })
      expect(Result.isFailure(refused) && refused.failure._tag).toBe("EventNotAllowedError")
      const tooBig = Hub.publishUnsafe(hub, { event: "tick", data: "x".repeat(100) })
      expect(Result.isFailure(tooBig) && tooBig.failure._tag).toBe("PayloadTooLargeError")
      yield* sink.awaitWrites(1)
      expect(sink.text()).toBe(`id: ${hub.epoch}-1\nevent: tick\ndata: 1\n\n`)
      expect(hub.stats().published).toBe(1)
    }))

  it.effect("refuses (publishing nothing) while a subscriber under suspend exists", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make()
      const sink = yield* TestSink.make()
      yield* Hub.subscribe(hub, { sink: sink.sink, heartbeat: false, strategy: "suspend" })
      const result = Hub.publishUnsafe(hub, { data: "x" })
      expect(Result.isFailure(result) && result.failure).toMatchObject({ _tag: "WouldBlockError", subscribers: 1 })
      expect(hub.stats().published).toBe(0)
    }))
})
