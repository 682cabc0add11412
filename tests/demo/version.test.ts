// The demo's version stream, black-box over HTTP against the real server:
// connection_open, one version event, then heartbeat events every HEARTBEAT_MS.
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { SseClient } from "@sluice/http"
import { TestClient } from "@sluice/http/testing"
import { Effect, Stream } from "effect"
import { type DemoProcess, startDemo } from "./DemoProcess.ts"
import { awaitFrames, framesOf, json, names } from "./support.ts"

let demo: DemoProcess
beforeAll(async () => {
  // Short heartbeats so the test sees several without waiting seconds.
  demo = await startDemo({ env: { HEARTBEAT_MS: "40" } })
})
afterAll(async () => {
  await demo?.stop()
})

const expectVersion = (data: unknown) => {
  expect(Object.keys(data as object).toSorted()).toEqual(["environment", "git_commit", "version"])
  for (const value of Object.values(data as object)) {
    expect(typeof value).toBe("string")
    expect((value as string).length).toBeGreaterThan(0)
  }
}

describe("demo: version stream over HTTP", () => {
  it.live("connection_open, one version event, then heartbeat events (strict and lenient parse agree)", () =>
    Effect.gen(function*() {
      const client = yield* TestClient.open(demo.port, "/api/version/stream")
      expect(client.status).toBe(200)
      expect(client.headers["content-type"]).toMatch(/^text\/event-stream/)
      expect(client.headers["cache-control"]).toMatch(/no-cache/)
      // retry + connection_open + version + 4 heartbeats
      yield* awaitFrames(client, 7)
      client.destroy()
      const frames = framesOf(client)
      expect(names(frames).slice(0, 3)).toEqual(["retry", "connection_open", "version"])
      expect(frames[0]!.retry).toBeGreaterThan(0)
      expect(typeof json(frames[1]).connection_id).toBe("string")
      expectVersion(json(frames[2]))
      const rest = frames.slice(3)
      expect(rest.length).toBeGreaterThanOrEqual(4)
      expect(rest.every((f) => f.name === "heartbeat")).toBe(true)
      // Heartbeat events carry JSON data.
      for (const f of rest) expect(() => json(f)).not.toThrow()
    }))

  it.live("every client gets its own connection id and the same version", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([
        TestClient.open(demo.port, "/api/version/stream"),
        TestClient.open(demo.port, "/api/version/stream")
      ])
      yield* Effect.all([awaitFrames(a, 3), awaitFrames(b, 3)])
      const [fa, fb] = [framesOf(a), framesOf(b)]
      expect(json(fa[1]).connection_id).not.toBe(json(fb[1]).connection_id)
      expect(json(fa[2])).toEqual(json(fb[2]))
    }))

  for (const strict of [true, false]) {
    it.live(`sluice's SseClient (${strict ? "strict" : "lenient"}) reads the version and heartbeats`, () =>
      Effect.gen(function*() {
        const events = yield* SseClient.connect(`${demo.url}/api/version/stream`, { strict, maxAttempts: 1 }).pipe(
          Stream.take(5),
          Stream.runCollect,
          Effect.timeout("10 seconds")
        )
        expect(events.map((e) => e.event)).toEqual([
          "connection_open",
          "version",
          "heartbeat",
          "heartbeat",
          "heartbeat"
        ])
        expectVersion(JSON.parse(events[1]!.data))
      }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))
  }
})

describe("demo: unknown routes", () => {
  it.live("an unknown path answers 404 with a problem body and logs nothing; HEAD still works", () =>
    Effect.gen(function*() {
      const before = demo.output().length
      const response = yield* Effect.promise(() => fetch(`${demo.url}/no/such/route`))
      expect(response.status).toBe(404)
      expect(response.headers.get("content-type")).toBe("application/problem+json")
      expect(yield* Effect.promise(() => response.json())).toMatchObject({ status: 404, title: "Not Found" })
      const posted = yield* Effect.promise(() => fetch(`${demo.url}/no/such/route`, { method: "POST" }))
      expect(posted.status).toBe(404)
      // HEAD still reaches the GET route of a known path, and is a bare 404 elsewhere.
      const head = yield* Effect.promise(() => fetch(`${demo.url}/health`, { method: "HEAD" }))
      expect(head.status).toBe(200)
      const headUnknown = yield* Effect.promise(() => fetch(`${demo.url}/no/such/route`, { method: "HEAD" }))
      expect(headUnknown.status).toBe(404)
      // An error line would be written before the 404 left; a request after it gives the pipe time to bring it.
      const health = yield* Effect.promise(() => fetch(`${demo.url}/health`))
      expect(health.status).toBe(200)
      expect(demo.output().slice(before)).not.toMatch(/ERROR|RouteNotFound/)
    }))
})
