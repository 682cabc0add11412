/**
 * Bad input gets a 4xx problem-details answer, is counted, and touches no
 * stream: /internal/send and /publish.
 */
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import * as Http from "node:http"
import { request } from "./support/backend.ts"
import { events, secret, startGateway } from "./support/gateway.ts"

const post = (port: number, path: string, body: string, headers: Record<string, string> = {}) =>
  request(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${secret}`, ...headers },
    body
  })

const expectProblem = (res: { status: number; headers: Headers; json: any }, status: number, detail: RegExp) => {
  expect(res.status).toBe(status)
  expect(res.headers.get("content-type")).toBe("application/problem+json")
  expect(res.json).toMatchObject({ type: "about:blank", status })
  expect(typeof res.json.title).toBe("string")
  expect(res.json.detail).toMatch(detail)
}

// A body sent in chunks with no length, that never ends by itself: only a
// limit applied while reading can answer it.
const endlessBody = (port: number, path: string, chunk: string) =>
  Effect.callback<number>((resume) => {
    const req = Http.request({
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${secret}`, "transfer-encoding": "chunked" }
    }, (res) => {
      res.resume()
      resume(Effect.succeed(res.statusCode ?? 0))
      req.destroy()
    })
    req.on("error", () => {})
    const pump = () => {
      while (req.write(chunk)) {
        if (req.destroyed) return
      }
    }
    req.on("drain", pump)
    pump()
    return Effect.sync(() => req.destroy())
  })

describe("bad input on /internal/send", () => {
  it.live("each bad request gets its 4xx and no event reaches the key's client", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ maxBodyBytes: 2048, maxEventBytes: 512 })
      const client = yield* TestClient.open(port, "/sse/k1")
      yield* client.awaitFrames(2)
      const cases: Array<[string, Record<string, string>, number, RegExp]> = [
        ["{", {}, 400, /malformed JSON/],
        [JSON.stringify({ key: "k1", event: { data: "x" }, extra: 1 }), {}, 400, /unknown field "extra"/],
        [JSON.stringify({ key: "k1", event: { data: "x", colour: "red" } }), {}, 400, /unknown field "colour"/],
        [JSON.stringify({ key: "k1", event: { event: "a\nb", data: "x" } }), {}, 400, /event/],
        [JSON.stringify({ key: "k1", event: { id: "1\u00002", data: "x" } }), {}, 400, /id/],
        [JSON.stringify({ key: "k1", token: "t", event: { data: "x" } }), {}, 400, /exactly one/],
        [JSON.stringify({ key: "k1" }), {}, 400, /nothing to do/],
        [JSON.stringify({ key: "k1", event: { data: "x" }, reason: "r" }), {}, 400, /close/],
        [JSON.stringify({ key: "k1", event: { data: "x".repeat(600) } }), {}, 413, /larger than 512/],
        [
          JSON.stringify([{ key: "k1", event: { data: "ok" } }, { key: "k1", event: { data: 1, bad: 2 } }]),
          {},
          400,
          /item 1/
        ],
        [JSON.stringify({ key: "k1", event: { data: "x".repeat(3000) } }), {}, 413, /larger than 2048/],
        [JSON.stringify({ key: "k1", event: { data: "x" } }), { authorization: "Bearer wrong" }, 401, /secret/],
        [JSON.stringify({ key: "k1", event: { data: "x" } }), { authorization: "" }, 401, /Authorization/]
      ]
      for (const [body, headers, status, detail] of cases) {
        expectProblem(yield* post(port, "/internal/send", body, headers), status, detail)
      }
      expectProblem(
        yield* post(port, "/internal/send", JSON.stringify({ token: "nope", event: { data: "x" } })),
        404,
        /token/
      )
      // The one good send after all that is the first event the client sees.
      const ok = yield* post(port, "/internal/send", JSON.stringify({ key: "k1", event: { data: "good" } }))
      expect(ok.json).toEqual({ result: "delivered" })
      yield* client.awaitFrames(3)
      expect(events(client).slice(1).map((e) => e.data)).toEqual(["good"])
      const metrics = String((yield* request(`http://127.0.0.1:${port}/metrics`)).json)
      for (
        const reason of [
          "malformed_json",
          "unknown_field",
          "invalid_event",
          "too_large",
          "wrong_secret",
          "unknown_token"
        ]
      ) {
        expect(metrics).toMatch(new RegExp(`sluice_gateway_refusals_total\\{[^}]*reason="${reason}"`))
      }
    }))

  it.live("a chunked body is cut at the limit while it is read (413), never buffered whole", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ maxBodyBytes: 4096 })
      expect(yield* endlessBody(port, "/internal/send", "x".repeat(1024))).toBe(413)
      expect(yield* endlessBody(port, "/publish", "y".repeat(1024))).toBe(413)
    }))

  it.live("without a configured secret /internal/send is disabled (403)", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ secret: undefined })
      expectProblem(yield* post(port, "/internal/send", "{}"), 403, /GATEWAY_SECRET/)
    }))

  it.live("close without an event closes the live stream with the reason; a terminal send closes the key (409 after)", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      const a = yield* TestClient.open(port, "/sse/ka")
      yield* a.awaitFrames(2)
      expect((yield* post(port, "/internal/send", JSON.stringify({ key: "ka", close: true, reason: "kicked" }))).json)
        .toEqual({ result: "closed" })
      yield* a.ended
      expect(events(a).map((e) => e.event)).toEqual(["connection_open", "connection_close"])
      expect(JSON.parse(events(a)[1]!.data)).toMatchObject({ reason: "kicked" })
      const done = yield* post(
        port,
        "/internal/send",
        JSON.stringify({ key: "kb", event: { event: "done", data: "{}" }, close: true, reason: "task_completed" })
      )
      expect(done.json).toEqual({ result: "pending" })
      expectProblem(
        yield* post(port, "/internal/send", JSON.stringify({ key: "kb", event: { data: "late" } })),
        409,
        /closed/
      )
      // A client arriving later learns the end at once.
      const b = yield* TestClient.open(port, "/sse/kb")
      yield* b.ended
      expect(events(b).map((e) => e.event)).toEqual(["connection_open", "done", "connection_close"])
    }))
})

describe("unknown paths", () => {
  it.live("get a problem-details 404; the routes still answer", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      expectProblem(yield* request(`http://127.0.0.1:${port}/nope?x=1`), 404, /GET \/nope$/)
      expectProblem(yield* post(port, "/subscribe", "{}"), 404, /POST \/subscribe/)
      expect((yield* request(`http://127.0.0.1:${port}/health`)).json).toMatchObject({ status: "ok" })
    }))
})

describe("bad input on /publish", () => {
  it.live("each bad request gets its 4xx and no subscriber sees anything", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ maxEventBytes: 256, maxTopicsPerSubscription: 3 })
      const client = yield* TestClient.open(port, "/subscribe?topic=t")
      yield* client.awaitFrames(2)
      const cases: Array<[string, string, number, RegExp]> = [
        ["{", "application/json", 400, /malformed JSON/],
        [JSON.stringify({ topic: "t", data: "x", colour: 1 }), "application/json", 400, /unknown field/],
        [JSON.stringify({ data: "x" }), "application/json", 400, /topic/],
        [JSON.stringify({ topic: "", data: "x" }), "application/json", 400, /topic/],
        [JSON.stringify({ topic: ["a", "b", "c", "d"], data: "x" }), "application/json", 400, /topics/],
        [JSON.stringify({ topic: "t", data: "x", type: "a\rb" }), "application/json", 400, /event/],
        [JSON.stringify({ topic: "t", data: "x", id: "a\nb" }), "application/json", 400, /id/],
        [JSON.stringify({ topic: "t", data: "x".repeat(300) }), "application/json", 413, /larger/],
        [
          JSON.stringify([{ topic: "t", data: "ok" }, { topic: "t", data: "x", id: "\u0000" }]),
          "application/json",
          400,
          /item 1/
        ],
        ["topic=t&data=x&nope=1", "application/x-www-form-urlencoded", 400, /unknown field/],
        ["data", "text/plain", 415, /application\/json/]
      ]
      for (const [body, type, status, detail] of cases) {
        expectProblem(yield* post(port, "/publish", body, { "content-type": type }), status, detail)
      }
      expect((yield* post(port, "/publish", JSON.stringify({ topic: "t", data: "good" }))).status).toBe(200)
      yield* client.awaitFrames(3)
      expect(events(client).slice(1).map((e) => e.data)).toEqual(["good"])
    }))

  it.live("a subscribe without topics, or with too many, gets 400; an invalid Last-Event-ID too", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway({ maxTopicsPerSubscription: 2 })
      expectProblem(yield* request(`http://127.0.0.1:${port}/subscribe`), 400, /topic/)
      expectProblem(yield* request(`http://127.0.0.1:${port}/subscribe?topic=a&topic=b&topic=c`), 400, /topics/)
      expect(
        (yield* request(`http://127.0.0.1:${port}/subscribe?topic=a`, {
          headers: { "last-event-id": "x".repeat(2000) }
        })).status
      )
        .toBe(400)
    }))
})
