import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { Effect, Layer, Stream } from "effect"
import { HttpRouter } from "effect/http"
import * as Http from "node:http"
import { SseAuth, SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

const secretEvents = () =>
  Stream.concat(Stream.make(SseEvent.make({ event: "secret", data: "launch codes" })), Stream.never)

const request = (port: number, path: string, headers: Record<string, string> = {}) =>
  Effect.callback<{ status: number; headers: Http.IncomingHttpHeaders; body: string }>((resume) => {
    const req = Http.get({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString()
        })))
    })
    req.on("error", (e) => resume(Effect.die(e)))
  })

describe("SseResponse protection", () => {
  it.live("connection limits: 503 for the server, 429 per client, with Retry-After, before any stream starts", () =>
    Effect.gen(function*() {
      let started = 0
      const { port, server } = yield* serve(
        Layer.mergeAll(
          HttpRouter.add(
            "GET",
            "/a",
            SseResponse.stream(() =>
              Stream.concat(
                Stream.sync(() => {
                  started++
                  return SseEvent.data("hi")
                }),
                Stream.never
              )
            )
          ),
          HttpRouter.add(
            "GET",
            "/b",
            SseResponse.stream(() => Stream.never, {})
          )
        ),
        { maxConnections: 3, maxConnectionsPerClient: 2, retryAfter: "7 seconds" }
      )
      const a1 = yield* open(port, "/a")
      const a2 = yield* open(port, "/a")
      yield* a1.awaitFrames(3)
      yield* a2.awaitFrames(3)
      // Same client (127.0.0.1) over its share: 429.
      const third = yield* request(port, "/a")
      expect(third.status).toBe(429)
      expect(third.headers["retry-after"]).toBe("7")
      expect(third.headers["content-type"]).toBe("application/problem+json")
      expect(JSON.parse(third.body)).toMatchObject({ status: 429, title: "Too Many Requests" })
      expect(started).toBe(2)
      expect(server.open()).toBe(2)
      // A slot frees when a client leaves.
      a1.destroy()
      expect(yield* until(() => server.open() === 1)).toBe(true)
      const again = yield* open(port, "/a")
      yield* again.awaitFrames(3)
      expect(started).toBe(3)
    }))

  it.live("server-wide limit answers 503", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(
        HttpRouter.add("GET", "/a", SseResponse.stream(() => Stream.never)),
        { maxConnections: 1, clientKey: (req) => req.headers["x-client"] ?? "?" }
      )
      const first = yield* open(port, "/a", { "x-client": "one" })
      yield* first.awaitFrames(2)
      const second = yield* request(port, "/a", { "x-client": "two" })
      expect(second.status).toBe(503)
      expect(second.headers["retry-after"]).toBe("5")
      expect(JSON.parse(second.body).detail).toContain("limit of 1 streams")
    }))

  it.live("authorization: 401 and 403 with problem details; no event ever reaches a refused client", () =>
    Effect.gen(function*() {
      const authorize = SseAuth.bearer(
        (token) =>
          token === "good"
            ? Effect.succeed({ user: "ada" })
            : token === "reader"
            ? Effect.fail(new SseAuth.ForbiddenError({ detail: "this topic needs the admin role" }))
            : Effect.fail(new SseAuth.UnauthorizedError({ detail: "unknown token" })),
        { cookie: "session" }
      )
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/secret",
        SseResponse.stream(
          ({ principal }) => Stream.concat(Stream.make(SseEvent.data(`hello ${principal.user}`)), secretEvents()),
          { authorize }
        )
      ))
      const none = yield* request(port, "/secret")
      expect(none.status).toBe(401)
      expect(none.headers["www-authenticate"]).toBe("Bearer")
      expect(none.body).not.toContain("launch codes")
      const bad = yield* request(port, "/secret", { authorization: "Bearer nope" })
      expect([bad.status, JSON.parse(bad.body).detail]).toEqual([401, "unknown token"])
      const malformed = yield* request(port, "/secret", { authorization: "Basic abc" })
      expect(malformed.status).toBe(401)
      const forbidden = yield* request(port, "/secret", { authorization: "Bearer reader" })
      expect(forbidden.status).toBe(403)
      expect(forbidden.headers["content-type"]).toBe("application/problem+json")
      expect(forbidden.body).not.toContain("launch codes")

      const byHeader = yield* open(port, "/secret", { authorization: "Bearer good" })
      yield* byHeader.awaitFrames(4)
      expect(byHeader.events().map((e) => e.data).slice(2)).toEqual(["hello ada", "launch codes"])
      const byCookie = yield* open(port, "/secret", { cookie: "theme=dark; session=good" })
      yield* byCookie.awaitFrames(4)
      expect(byCookie.status).toBe(200)
    }))

  it.live("an invalid Last-Event-ID is a 400 with problem details", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add("GET", "/e", SseResponse.stream(() => Stream.never)))
      const tooLong = yield* request(port, "/e", { "last-event-id": "x".repeat(2000) })
      expect(tooLong.status).toBe(400)
      expect(JSON.parse(tooLong.body)).toMatchObject({ status: 400, title: "Bad Request" })
      const withNul = yield* request(port, `/e?lastEventId=${encodeURIComponent("a\0b")}`)
      expect(withNul.status).toBe(400)
    }))

  it.live("Last-Event-ID reaches the producer from the header or the lastEventId query parameter", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(({ lastEventId }) => Stream.make(SseEvent.data(String(lastEventId))), {
          lifecycle: { open: false, close: false, retry: false }
        })
      ))
      const fromHeader = yield* open(port, "/e", { "last-event-id": "41" })
      yield* fromHeader.ended
      const fromQuery = yield* open(port, "/e?lastEventId=42")
      yield* fromQuery.ended
      const both = yield* open(port, "/e?lastEventId=1", { "last-event-id": "43" })
      yield* both.ended
      const none = yield* open(port, "/e")
      yield* none.ended
      expect([fromHeader, fromQuery, both, none].map((c) => c.events()[0]?.data)).toEqual([
        "41",
        "42",
        "43",
        "undefined"
      ])
    }))

  it.live("HEAD gets the stream's headers and no stream: the producer never starts", () =>
    Effect.gen(function*() {
      let started = 0
      const { port, server } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => Stream.concat(Stream.sync(() => ++started).pipe(Stream.drain), Stream.never))
      ))
      const head = yield* Effect.callback<{ status: number; headers: Http.IncomingHttpHeaders; body: string }>(
        (resume) => {
          const req = Http.request({ host: "127.0.0.1", port, path: "/e", method: "HEAD", agent: false }, (res) => {
            const chunks: Array<Buffer> = []
            res.on("data", (c: Buffer) => chunks.push(c))
            res.on("end", () =>
              resume(Effect.succeed({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks).toString()
              })))
          })
          req.on("error", (e) => resume(Effect.die(e)))
          req.end()
        }
      )
      expect(head.status).toBe(200)
      expect(head.headers["content-type"]).toBe("text/event-stream; charset=utf-8")
      expect(head.headers["cache-control"]).toBe("no-cache, no-transform")
      expect(head.body).toBe("")
      expect(started).toBe(0)
      expect(server.open()).toBe(0)
    }))
})
