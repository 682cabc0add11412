/**
 * Stream options of the gateway: heartbeat events, lifecycle event names,
 * and the keyed route's bounds.
 */
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import { events, json, startGateway } from "./support/gateway.ts"

describe("gateway streams", () => {
  it.live("--heartbeat-events: `heartbeat` events with an ISO timestamp, on keyed and topic streams", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ heartbeatMs: 30, heartbeatEvents: true })
      for (const path of ["/sse/k", "/subscribe?topic=t"]) {
        const client = yield* TestClient.open(port, path)
        yield* client.awaitFrames(4)
        // A third beat may already be in when a busy machine reads them.
        const beats = events(client).slice(1)
        expect(beats.length).toBeGreaterThanOrEqual(2)
        expect(new Set(beats.map((e) => e.event))).toEqual(new Set(["heartbeat"]))
        const { timestamp } = json(beats[0]!.data)
        expect(new Date(timestamp).toISOString()).toBe(timestamp)
      }
    }))

  it.live("lifecycle event names are configurable, or off", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ openEvent: "hello", closeEvent: false })
      const client = yield* TestClient.open(port, "/sse/k", { "x-correlation-id": "c1" })
      yield* client.awaitFrames(2)
      expect(events(client)[0]).toMatchObject({
        event: "hello",
        data: "{\"status\":\"connected\",\"correlation_id\":\"c1\"}"
      })
    }))

  it.live("more streams than the per-client limit get 429 with Retry-After", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ maxConnectionsPerClient: 2 })
      const a = yield* TestClient.open(port, "/sse/a")
      const b = yield* TestClient.open(port, "/subscribe?topic=t")
      yield* a.awaitFrames(2)
      yield* b.awaitFrames(2)
      const c = yield* TestClient.open(port, "/sse/c")
      yield* c.ended
      expect(c.status).toBe(429)
      expect(c.headers["retry-after"]).toBeDefined()
      expect(c.headers["content-type"]).toBe("application/problem+json")
    }))
})
