/**
 * The Flask gateway's scenarios, end to end: a Python backend (standard
 * library only, a child process) drives the gateway over HTTP, a node:http
 * client plays the browser.
 */
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import * as Net from "node:net"
import type { Config } from "../src/Config.ts"
import { type Backend, request, startBackend } from "./support/backend.ts"
import { events, json, secret, startGateway } from "./support/gateway.ts"

const route = "/sse/tasks/:key/stream"
const path = (id: string) => `/sse/tasks/${id}/stream`

const setup = (overrides: Partial<Config> = {}) =>
  Effect.gen(function*() {
    const backend = yield* startBackend
    const gateway = yield* startGateway({ callbackUrl: `${backend.url}/callback`, routes: [route], ...overrides })
    yield* backend.post("/control", { gateway_url: `http://127.0.0.1:${gateway.port}`, secret })
    return { backend, gateway }
  })

const task = (backend: Backend, id: string) => backend.post("/tasks", { id })

describe("keyed mode with a Python backend", () => {
  it.live("connect: connection_open with the correlation id, echoed, and sent to the app with filtered headers", () =>
    Effect.gen(function*() {
      const { backend, gateway } = yield* setup()
      yield* task(backend, "t1")
      const client = yield* TestClient.open(gateway.port, `${path("t1")}?lang=en&tag=a&tag=b`, {
        "x-correlation-id": "corr-123",
        cookie: "session=abc",
        "x-not-forwarded": "nope",
        authorization: `Bearer ${secret}`
      })
      yield* client.awaitFrames(2)
      expect(client.status).toBe(200)
      expect(client.headers["x-correlation-id"]).toBe("corr-123")
      const [open] = events(client)
      expect(open!.event).toBe("connection_open")
      expect(json(open!.data)).toEqual({ status: "connected", correlation_id: "corr-123" })
      const [connect] = yield* backend.log("connect", 1)
      expect(connect.key).toBe("t1")
      expect(connect.correlation_id).toBe("corr-123")
      expect(connect.header_correlation_id).toBe("corr-123")
      expect(connect.request).toEqual({
        method: "GET",
        path: path("t1"),
        query: { lang: "en", tag: ["a", "b"] },
        headers: { cookie: "session=abc" }
      })
      expect(connect.token).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    }))

  it.live("task progress arrives in order; the terminal event is followed by connection_close task_completed", () =>
    Effect.gen(function*() {
      const { backend, gateway } = yield* setup()
      yield* task(backend, "t2")
      const client = yield* TestClient.open(gateway.port, path("t2"))
      yield* client.awaitFrames(2)
      yield* backend.log("connect", 1)
      const run = yield* backend.post("/tasks/t2/run", { steps: 5, by: "token" })
      expect(run.json.statuses).toEqual([200, 200, 200, 200, 200])
      yield* client.ended
      const got = events(client)
      expect(got.map((e) => e.event)).toEqual([
        "connection_open",
        "task_event",
        "task_event",
        "task_event",
        "task_event",
        "task_event",
        "connection_close"
      ])
      const progress = got.slice(1, 6).map((e) => json(e.data))
      expect(progress.map((p) => p.data.progress)).toEqual([20, 40, 60, 80, 100])
      expect(progress[4].event_type).toBe("task_completed")
      expect(json(got[6]!.data)).toMatchObject({ reason: "task_completed" })
      const [disconnect] = yield* backend.log("disconnect", 1)
      expect(disconnect).toMatchObject({ key: "t2", reason: "task_completed", decision: "cleared" })
    }))

  it.live("an unknown task: the app's 404 becomes the client's 404 problem (status mode)", () =>
    Effect.gen(function*() {
      const { gateway } = yield* setup()
      const res = yield* request(`http://127.0.0.1:${gateway.port}${path("nope")}`)
      expect(res.status).toBe(404)
      expect(res.headers.get("content-type")).toBe("application/problem+json")
      expect(res.json).toMatchObject({ status: 404, detail: "task not found" })
    }))

  it.live("an unknown task in stream mode: connection_open, error, connection_close task_not_found", () =>
    Effect.gen(function*() {
      const { gateway } = yield* setup({ refusal: "stream" })
      const client = yield* TestClient.open(gateway.port, path("nope"), { "x-request-id": "r-9" })
      yield* client.ended
      expect(client.status).toBe(200)
      const got = events(client)
      expect(got.map((e) => e.event)).toEqual(["connection_open", "error", "connection_close"])
      expect(json(got[1]!.data)).toMatchObject({ message: "task not found" })
      expect(json(got[2]!.data)).toEqual({ reason: "task_not_found", correlation_id: "r-9" })
    }))

  it.live("events sent before the client connects are delivered first, in order", () =>
    Effect.gen(function*() {
      const { backend, gateway } = yield* setup()
      yield* task(backend, "t3")
      const sent = yield* backend.post("/tasks/t3/send", {
        by: "key",
        events: [1, 2, 3].map((n) => ({ event: "task_event", data: { n } }))
      })
      expect(sent.json.answer.results.map((r: any) => r.result)).toEqual(["pending", "pending", "pending"])
      const client = yield* TestClient.open(gateway.port, path("t3"))
      yield* client.awaitFrames(5)
      yield* backend.post("/tasks/t3/send", { by: "key", events: [{ event: "task_event", data: { n: 4 } }] })
      yield* client.awaitFrames(6)
      const got = events(client)
      expect(got[0]!.event).toBe("connection_open")
      expect(got.slice(1).map((e) => json(e.data).n)).toEqual([1, 2, 3, 4])
    }))

  it.live("a second client replaces the first; the first's disconnect is ignored by token; its token answers 404", () =>
    Effect.gen(function*() {
      const { backend, gateway } = yield* setup()
      yield* task(backend, "t4")
      const first = yield* TestClient.open(gateway.port, path("t4"))
      yield* first.awaitFrames(2)
      const second = yield* TestClient.open(gateway.port, path("t4"))
      yield* second.awaitFrames(2)
      yield* first.ended
      const firstEvents = events(first)
      expect(firstEvents.map((e) => e.event)).toEqual(["connection_open", "connection_close"])
      expect(json(firstEvents[1]!.data)).toMatchObject({ reason: "replaced" })
      const [connectA, connectB] = yield* backend.log("connect", 2)
      const [disconnect] = yield* backend.log("disconnect", 1)
      expect(disconnect).toMatchObject({ token: connectA.token, reason: "replaced", decision: "ignored_stale" })
      expect(connectB.token).not.toBe(connectA.token)
      // The stale token is closed: the gateway says 404, the live one still works.
      const stale = yield* backend.post("/tasks/t4/send", { by: "stale", events: [{ data: "x" }] })
      expect(stale.json.status).toBe(404)
      const live = yield* backend.post("/tasks/t4/send", { by: "token", events: [{ event: "task_event", data: "y" }] })
      expect(live.json).toMatchObject({ status: 200, answer: { result: "delivered" } })
      yield* second.awaitFrames(3)
      expect(events(second).map((e) => e.data)).toContain("y")
    }))

  it.live("a closed token answers 404 once the client has left (the app cleans up)", () =>
    Effect.gen(function*() {
      const { backend, gateway } = yield* setup()
      yield* task(backend, "t5")
      const client = yield* TestClient.open(gateway.port, path("t5"))
      yield* client.awaitFrames(2)
      client.destroy()
      const [disconnect] = yield* backend.log("disconnect", 1)
      expect(disconnect).toMatchObject({ key: "t5", reason: "client_gone", decision: "cleared" })
      const [connect] = yield* backend.log("connect", 1)
      const res = yield* request(`http://127.0.0.1:${gateway.port}/internal/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify({ token: connect.token, event: { data: "late" } })
      })
      expect(res.status).toBe(404)
      expect(res.headers.get("content-type")).toBe("application/problem+json")
    }))

  it.live("a slow app: the connect callback times out and the client gets 503 with Retry-After", () =>
    Effect.gen(function*() {
      const { backend, gateway } = yield* setup({ callbackTimeoutMs: 200 })
      yield* task(backend, "t6")
      yield* backend.post("/control", { connect_delay: 1.5 })
      const res = yield* request(`http://127.0.0.1:${gateway.port}${path("t6")}`)
      expect(res.status).toBe(503)
      expect(res.headers.get("retry-after")).toBe("5")
      expect(res.json.detail).toMatch(/timeout/)
    }))

  it.live("an app that is down: the client gets 503 with Retry-After, at once", () =>
    Effect.gen(function*() {
      // A port nobody listens on: bound, then released.
      const port = yield* Effect.callback<number>((resume) => {
        const s = Net.createServer().listen(0, "127.0.0.1", () => {
          const p = (s.address() as Net.AddressInfo).port
          s.close(() => resume(Effect.succeed(p)))
        })
      })
      const gateway = yield* startGateway({ callbackUrl: `http://127.0.0.1:${port}/callback`, routes: [route] })
      const res = yield* request(`http://127.0.0.1:${gateway.port}${path("x")}`)
      expect(res.status).toBe(503)
      expect(res.headers.get("retry-after")).toBe("5")
      expect(res.json.detail).toMatch(/unreachable/)
      const metrics = yield* request(`http://127.0.0.1:${gateway.port}/metrics`)
      expect(String(metrics.json)).toMatch(/sluice_gateway_callbacks_total\{[^}]*result="unreachable"[^}]*\} 1/)
    }))
})
