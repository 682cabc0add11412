/**
 * Two gateway processes on one Redis act as one (REDIS_URL): the Flask
 * gateway's scenarios with the Python backend, the client on process A and
 * `/internal/send` posted to process B; replacement across processes with
 * the stale disconnect ignored by token; a process killed with SIGKILL; and
 * topics published on one process, subscribed and resumed on the other.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { RedisServer } from "@sluice/redis/testing"
import { Context, Effect, Layer, Schedule } from "effect"
import { type Backend, request, startBackend } from "./support/backend.ts"
import { events, json, secret, startGateway } from "./support/gateway.ts"
import { type GatewayProcess, startProcess } from "./support/process.ts"

const route = "/sse/tasks/:key/stream"
const path = (id: string) => `/sse/tasks/${id}/stream`

/** A gateway process on `redisUrl` calling `backend` back. */
const gateway = (redisUrl: string, backend: Backend, env: Record<string, string> = {}) =>
  startProcess([], {
    REDIS_URL: redisUrl,
    GATEWAY_CALLBACK_URL: `${backend.url}/callback`,
    GATEWAY_SECRET: secret,
    GATEWAY_ROUTES: route,
    // A busy test machine must not turn the test's clients away.
    GATEWAY_MAX_EVENT_LOOP_DELAY: "off",
    GATEWAY_HEARTBEAT: "off",
    ...env
  })

/** Posts to a gateway's /internal/send directly (as the app would). */
const send = (g: GatewayProcess, body: unknown) =>
  request(`http://127.0.0.1:${g.port}/internal/send`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })

/** The backend's callbacks for `key` of `action`, once there are `count` of them (bounded wait). */
const callbacks = (backend: Backend, key: string, action: "connect" | "disconnect", count: number) =>
  backend.log(action).pipe(
    Effect.map((all) => all.filter((c) => c.key === key)),
    Effect.filterOrFail((found) => found.length >= count),
    Effect.retry({ times: 200, schedule: Schedule.spaced("25 millis") })
  )

// One Redis, one backend, two gateways: the app talks to B, clients to A (unless a test says otherwise).
class Cluster extends Context.Service<Cluster, {
  readonly backend: Backend
  readonly a: GatewayProcess
  readonly b: GatewayProcess
}>()("gateway/test/redis/Cluster") {
  static readonly layer = Layer.effect(
    Cluster,
    Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      const backend = yield* startBackend
      const [a, b] = yield* Effect.all([gateway(redis.url, backend), gateway(redis.url, backend)], {
        concurrency: 2
      })
      yield* backend.post("/control", { gateway_url: `http://127.0.0.1:${b!.port}`, secret })
      return Cluster.of({ backend, a: a!, b: b! })
    })
  )
}

layer(Cluster.layer, { excludeTestServices: true, timeout: "120 seconds" })(
  "two gateway processes on Redis, keyed mode with the Python backend (client on A, /internal/send to B)",
  (shared) => {
    shared.effect(
      "connection_open; progress by token posted to B arrives in order; task_completed closes; one disconnect",
      () =>
        Effect.gen(function*() {
          const { a, backend } = yield* Cluster
          yield* backend.post("/tasks", { id: "k1" })
          const client = yield* TestClient.open(a.port, path("k1"), { "x-correlation-id": "c-k1" })
          yield* client.awaitFrames(2)
          yield* callbacks(backend, "k1", "connect", 1)
          const run = yield* backend.post("/tasks/k1/run", { steps: 5, by: "token" })
          expect(run.json.statuses).toEqual([200, 200, 200, 200, 200])
          yield* client.ended
          const got = events(client)
          expect(got.map((e) => e.event)).toEqual([
            "connection_open",
            ...Array.from({ length: 5 }, () => "task_event"),
            "connection_close"
          ])
          expect(got.slice(1, 6).map((e) => json(e.data).data.progress)).toEqual([20, 40, 60, 80, 100])
          expect(json(got[6]!.data)).toEqual({ reason: "task_completed", correlation_id: "c-k1" })
          const [disconnect] = yield* callbacks(backend, "k1", "disconnect", 1)
          expect(disconnect).toMatchObject({ reason: "task_completed", decision: "cleared", correlation_id: "c-k1" })
          // Once: the process that held the connection sent it, nobody else.
          expect((yield* backend.log("disconnect")).filter((c: any) => c.key === "k1")).toHaveLength(1)
        })
    )

    shared.effect(
      "events sent by key to B before the client connects to A come first, in order",
      () =>
        Effect.gen(function*() {
          const { a, backend } = yield* Cluster
          yield* backend.post("/tasks", { id: "k2" })
          const sent = yield* backend.post("/tasks/k2/send", {
            by: "key",
            events: [1, 2, 3].map((n) => ({ event: "task_event", data: { n } }))
          })
          expect(sent.json.answer.results.map((r: any) => r.result)).toEqual(["pending", "pending", "pending"])
          const client = yield* TestClient.open(a.port, path("k2"))
          yield* client.awaitFrames(5) // retry, connection_open and the three waiting events
          const live = yield* backend.post("/tasks/k2/send", {
            by: "key",
            events: [{ event: "task_event", data: { n: 4 } }]
          })
          expect(live.json.answer).toEqual({ result: "delivered" })
          yield* client.awaitFrames(6)
          const got = events(client)
          expect(got[0]!.event).toBe("connection_open")
          expect(got.slice(1).map((e) => json(e.data).n)).toEqual([1, 2, 3, 4])
        })
    )

    shared.effect(
      "a second client on B replaces the first on A: replaced, the stale disconnect ignored by token, 404 for the old token on both processes",
      () =>
        Effect.gen(function*() {
          const { a, b, backend } = yield* Cluster
          yield* backend.post("/tasks", { id: "k3" })
          const first = yield* TestClient.open(a.port, path("k3"))
          yield* first.awaitFrames(2)
          const second = yield* TestClient.open(b.port, path("k3"))
          yield* second.awaitFrames(2)
          yield* first.ended
          const firstEvents = events(first)
          expect(firstEvents.map((e) => e.event)).toEqual(["connection_open", "connection_close"])
          expect(json(firstEvents[1]!.data)).toMatchObject({ reason: "replaced" })
          const [connectA, connectB] = yield* callbacks(backend, "k3", "connect", 2)
          const [disconnect] = yield* callbacks(backend, "k3", "disconnect", 1)
          expect(disconnect).toMatchObject({ token: connectA.token, reason: "replaced", decision: "ignored_stale" })
          expect(connectB.token).not.toBe(connectA.token)
          const stale = yield* backend.post("/tasks/k3/send", { by: "stale", events: [{ data: "x" }] })
          expect(stale.json.status).toBe(404)
          const staleOnA = yield* send(a, { token: connectA.token, event: { data: "x" } })
          expect(staleOnA.status).toBe(404)
          expect(staleOnA.headers.get("content-type")).toBe("application/problem+json")
          const live = yield* backend.post("/tasks/k3/send", {
            by: "token",
            events: [{ event: "task_event", data: "y" }]
          })
          expect(live.json).toMatchObject({ status: 200, answer: { result: "delivered" } })
          yield* second.awaitFrames(3)
          expect(events(second).map((e) => e.data)).toEqual([expect.any(String), "y"])
          expect(events(first).map((e) => e.data)).not.toContain("x")
        })
    )

    shared.effect(
      "a client that left A: its token answers 404 on B as soon as the app has its disconnect",
      () =>
        Effect.gen(function*() {
          const { a, b, backend } = yield* Cluster
          yield* backend.post("/tasks", { id: "k4" })
          const client = yield* TestClient.open(a.port, path("k4"))
          yield* client.awaitFrames(2)
          const [connect] = yield* callbacks(backend, "k4", "connect", 1)
          client.destroy()
          const [disconnect] = yield* callbacks(backend, "k4", "disconnect", 1)
          expect(disconnect).toMatchObject({ token: connect.token, reason: "client_gone", decision: "cleared" })
          const res = yield* send(b, { token: connect.token, event: { data: "late" } })
          expect(res.status).toBe(404)
          expect(res.json.detail).toContain(connect.token)
        })
    )

    shared.effect(
      "close by token posted to B ends the stream on A (the key stays open); a terminal send by key to A reaches a client on B",
      () =>
        Effect.gen(function*() {
          const { a, b, backend } = yield* Cluster
          yield* backend.post("/tasks", { id: "k5" })
          const client = yield* TestClient.open(a.port, path("k5"))
          yield* client.awaitFrames(2)
          const closed = yield* backend.post("/tasks/k5/send", { by: "token", close: true, reason: "cancelled" })
          expect(closed.json).toMatchObject({ status: 200, answer: { result: "closed" } })
          yield* client.ended
          expect(json(events(client).at(-1)!.data)).toMatchObject({ reason: "cancelled" })
          const again = yield* TestClient.open(b.port, path("k5"))
          yield* again.awaitFrames(2)
          const last = yield* send(a, {
            key: "k5",
            event: { event: "task_event", data: "done" },
            close: true,
            reason: "task_completed"
          })
          expect(last.json).toEqual({ result: "delivered" })
          yield* again.ended
          expect(events(again).slice(1).map((e) => e.event)).toEqual(["task_event", "connection_close"])
          const after = yield* send(b, { key: "k5", event: { data: "too late" } })
          expect(after.status).toBe(409)
        })
    )
  }
)

describe("two gateway processes on Redis, topics", () => {
  it.live(
    "published on A and B, subscribed on B to two topics, resumed on A with one Last-Event-ID: every event once, in one order",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const backend = yield* startBackend
        const [a, b] = yield* Effect.all([gateway(redis.url, backend), gateway(redis.url, backend)], {
          concurrency: 2
        })
        const publish = (g: GatewayProcess, items: ReadonlyArray<Record<string, unknown>>) =>
          request(`http://127.0.0.1:${g.port}/publish`, {
            method: "POST",
            headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
            body: JSON.stringify(items)
          })
        const subscriber = yield* TestClient.open(b!.port, "/subscribe?topic=news&topic=chat")
        yield* subscriber.awaitFrames(2)
        // 60 events from both processes, on three topics (one nobody here follows).
        const ids: Array<string> = []
        for (let i = 0; i < 20; i++) {
          const g = i % 2 === 0 ? a! : b!
          const res = yield* publish(g, [
            { topic: "news", data: `n${i}` },
            { topic: "weather", data: `w${i}` },
            { topic: ["chat", "news"], data: `c${i}` }
          ])
          expect(res.status).toBe(200)
          ids.push(...res.json.ids)
        }
        // Ids are one sequence across both processes.
        const seqs = ids.map((id) => Number(id.slice(id.lastIndexOf("-") + 1)))
        expect(seqs).toEqual(Array.from({ length: 60 }, (_, i) => seqs[0]! + i))
        const wanted = Array.from({ length: 20 }, (_, i) => [`n${i}`, `c${i}`]).flat()
        yield* subscriber.awaitFrames(2 + wanted.length)
        const got = events(subscriber).filter((e) => e.event === "message")
        expect(got.map((e) => e.data)).toEqual(wanted)
        expect(got.map((e) => e.id)).toEqual(ids.filter((_, i) => i % 3 !== 1))
        // Resumed on A after the 10th event it saw; events published meanwhile on B come too.
        subscriber.destroy()
        yield* publish(b!, [{ topic: "chat", data: "while away" }])
        const resumed = yield* TestClient.open(a!.port, "/subscribe?topic=news&topic=chat", {
          "last-event-id": got[9]!.id!
        })
        const rest = [...wanted.slice(10), "while away"]
        yield* resumed.awaitFrames(2 + rest.length)
        expect(events(resumed).filter((e) => e.event === "message").map((e) => e.data)).toEqual(rest)
        expect(events(resumed).some((e) => e.event === "replay_gap")).toBe(false)
        // An id B gave out a moment ago resumes on A at once.
        const fresh = yield* publish(b!, [{ topic: "news", data: "fresh" }, { topic: "news", data: "next" }])
        const fromFresh = yield* TestClient.open(a!.port, "/subscribe?topic=news", {
          "last-event-id": fresh.json.ids[0]
        })
        yield* fromFresh.awaitFrames(3)
        expect(events(fromFresh).filter((e) => e.event === "message").map((e) => e.data)).toEqual(["next"])
      }).pipe(Effect.scoped),
    120_000
  )
})

describe("two gateway processes on Redis, a process killed", () => {
  it.live(
    "SIGKILL the process holding a client: its token answers 404 within the lease; events sent meanwhile by key reach the client when it comes back on B",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const backend = yield* startBackend
        const env = { GATEWAY_REDIS_LEASE: "2s" }
        const [a, b] = yield* Effect.all([gateway(redis.url, backend, env), gateway(redis.url, backend, env)], {
          concurrency: 2
        })
        yield* backend.post("/control", { gateway_url: `http://127.0.0.1:${b!.port}`, secret })
        yield* backend.post("/tasks", { id: "kk" })
        const client = yield* TestClient.open(a!.port, path("kk"))
        yield* client.awaitFrames(2)
        const [connect] = yield* callbacks(backend, "kk", "connect", 1)
        const killedAt = Date.now()
        yield* a!.stop("SIGKILL")
        // The app keeps sending by token until the gateway says the client is gone.
        const statuses: Array<number> = []
        const gone = yield* send(b!, { token: connect.token, event: { event: "task_event", data: "probe" } }).pipe(
          Effect.tap((res) => Effect.sync(() => statuses.push(res.status))),
          Effect.filterOrFail((res) => res.status === 404),
          Effect.retry({ times: 400, schedule: Schedule.spaced("25 millis") })
        )
        const waited = Date.now() - killedAt
        console.log(`SIGKILL of the gateway holding the client: its token answered 404 after ${waited} ms (lease 2 s)`)
        expect(gone.status).toBe(404)
        expect(waited).toBeLessThan(2_000 + 1_000)
        const sent = yield* send(b!, { key: "kk", event: { event: "task_event", data: "after" } })
        expect(sent.json).toEqual({ result: "pending" })
        const back = yield* TestClient.open(b!.port, path("kk"))
        const probes = statuses.filter((s) => s === 200).length
        yield* back.awaitFrames(2 + probes + 1)
        const data = events(back).slice(1).map((e) => e.data)
        // What the app sent by token while the lease ran waited too: nothing accepted was lost.
        expect(data).toEqual([...Array.from({ length: probes }, () => "probe"), "after"])
      }).pipe(Effect.scoped),
    120_000
  )
})

describe("a gateway on Redis while Redis is gone", () => {
  it.live(
    "/internal/send and /publish answer 503 with Retry-After (nothing is sent); once Redis is back they work again",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const g = yield* startGateway({ redisUrl: redis.url })
        const post = (p: string, body: unknown) =>
          request(`http://127.0.0.1:${g.port}${p}`, {
            method: "POST",
            headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
            body: JSON.stringify(body)
          })
        expect((yield* post("/internal/send", { key: "k", event: { data: "1" } })).json).toEqual({ result: "pending" })
        yield* redis.kill
        const refused = yield* post("/internal/send", { key: "k", event: { data: "2" } })
        expect(refused.status).toBe(503)
        expect(refused.headers.get("retry-after")).toBe("5")
        const publish = yield* post("/publish", { topic: "news", data: "x" })
        expect(publish.status).toBe(503)
        expect(publish.headers.get("retry-after")).toBe("5")
        expect(publish.json.detail).not.toContain(redis.url)
        yield* redis.start
        const again = yield* post("/internal/send", { key: "k", event: { data: "3" } }).pipe(
          Effect.filterOrFail((res) => res.status === 200),
          Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
        )
        expect(again.json).toEqual({ result: "pending" })
        const published = yield* post("/publish", { topic: "news", data: "y" }).pipe(
          Effect.filterOrFail((res) => res.status === 200),
          Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
        )
        expect(published.json.id).toMatch(/^[0-9a-z]+-1$/)
      }).pipe(Effect.scoped),
    60_000
  )
})
