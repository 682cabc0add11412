import { describe, expect, it } from "@effect/vitest"
import { Resumable, SseEvent } from "@sluice/core"
import { Deferred, Effect, Layer, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { SseResumable } from "../src/index.ts"
import { TestClient, TestServer } from "../src/testing.ts"

const token = (text: string) => SseEvent.make({ event: "token", data: JSON.stringify({ text }) })

/** Start (POST /s/:id?fail=1), attach, stop routes over `answers`; every stream waits for `release`. */
const routes = (answers: Resumable.Resumable, release: Deferred.Deferred<void>) => {
  const id = Effect.map(HttpRouter.params, (p) => p["id"] ?? "")
  return Layer.mergeAll(
    HttpRouter.add(
      "POST",
      "/s/:id",
      Effect.flatMap(id, (streamId) =>
        SseResumable.start(
          Resumable.start(
            answers,
            streamId,
            Stream.concat(
              Stream.make(token("a"), token("b"), token("c")),
              Stream.fromEffect(Deferred.await(release)).pipe(Stream.drain)
            ).pipe(Stream.concat(streamId.startsWith("fail") ? Stream.fail("db down") : Stream.empty))
          ),
          { location: (started) => `/s/${started}/stream` }
        ))
    ),
    HttpRouter.add(
      "GET",
      "/s/:id/stream",
      SseResumable.attach(answers, () => id, {
        heartbeat: false,
        lifecycle: { retry: { base: 1000, jitter: 0 } },
        end: (end) => [SseEvent.make({ event: "done", data: JSON.stringify({ reason: Resumable.reasonOf(end) }) })]
      })
    ),
    HttpRouter.add("DELETE", "/s/:id", SseResumable.stop(answers, id))
  )
}

const serve = Effect.gen(function*() {
  const answers = yield* Resumable.make()
  const release = yield* Deferred.make<void>()
  const { port } = yield* TestServer.serve(routes(answers, release))
  const call = (method: string, path: string) =>
    Effect.promise(async () => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { method })
      return { status: response.status, headers: response.headers, body: await response.text() }
    })
  return { port, release, call }
})

const shape = (events: ReadonlyArray<TestClient.RawEvent>) =>
  events.filter((e) => e.event !== "").map((e) => e.event === "connection_open" ? "open" : `${e.event}:${e.data}`)

describe("SseResumable", () => {
  it.live("POST starts once (201, then 200 existing); GET streams, resumes by header and query; the end closes", () =>
    Effect.gen(function*() {
      const { call, port, release } = yield* serve
      const first = yield* call("POST", "/s/x")
      expect(first.status).toBe(201)
      expect(JSON.parse(first.body)).toEqual({ id: "x" })
      expect(first.headers.get("location")).toBe("/s/x/stream")
      const again = yield* call("POST", "/s/x")
      expect([again.status, JSON.parse(again.body)]).toEqual([200, { id: "x", existing: true, status: "running" }])

      const live = yield* TestClient.open(port, "/s/x/stream")
      yield* live.awaitFrames(5) // retry, open, a, b, c
      const ids = live.events().filter((e) => e.event === "token").map((e) => e.id!)
      const byHeader = yield* TestClient.open(port, "/s/x/stream", { "last-event-id": ids[0]! })
      const byQuery = yield* TestClient.open(port, `/s/x/stream?lastEventId=${encodeURIComponent(ids[1]!)}`)
      yield* byHeader.awaitFrames(4)
      yield* byQuery.awaitFrames(3)
      yield* Deferred.succeed(release, undefined)
      for (const c of [live, byHeader, byQuery]) yield* c.ended
      const done = `done:${JSON.stringify({ reason: "completed" })}`
      const tokens = ["a", "b", "c"].map((t) => `token:${JSON.stringify({ text: t })}`)
      expect(shape(live.events()).slice(0, -1)).toEqual(["open", ...tokens, done])
      expect(shape(byHeader.events()).slice(1, -1)).toEqual([...tokens.slice(1), done])
      expect(shape(byQuery.events()).slice(1, -1)).toEqual([tokens[2], done])
      expect(JSON.parse(live.events().at(-1)!.data)).toMatchObject({ reason: "completed" })
    }))

  it.live("DELETE stops (204), clients get done and connection_close stopped; unknown ids: 404 and not_found", () =>
    Effect.gen(function*() {
      const { call, port } = yield* serve
      yield* call("POST", "/s/y")
      const c = yield* TestClient.open(port, "/s/y/stream")
      yield* c.awaitFrames(5)
      const stopped = yield* call("DELETE", "/s/y")
      expect([stopped.status, stopped.body]).toEqual([204, ""])
      yield* c.ended
      const last = c.events().slice(-2)
      expect(last.map((e) => [e.event, JSON.parse(e.data).reason])).toEqual([
        ["done", "stopped"],
        ["connection_close", "stopped"]
      ])
      // Stopping again is harmless; a stream that ended is still there to read.
      expect((yield* call("DELETE", "/s/y")).status).toBe(204)
      const reread = yield* TestClient.open(port, "/s/y/stream")
      yield* reread.ended
      expect(reread.events().filter((e) => e.event === "token")).toHaveLength(3)

      const unknown = yield* call("DELETE", "/s/nobody")
      expect(unknown.status).toBe(404)
      expect(unknown.headers.get("content-type")).toBe("application/problem+json")
      const missing = yield* TestClient.open(port, "/s/nobody/stream")
      yield* missing.ended
      expect(missing.status).toBe(200)
      expect(missing.events().filter((e) => e.event !== "").map((e) => [e.event, JSON.parse(e.data)])).toEqual([
        ["connection_open", expect.objectContaining({ connection_id: expect.any(String) })],
        ["error", { message: "not found" }],
        ["connection_close", expect.objectContaining({ reason: "not_found" })]
      ])
    }))

  it.live("a failed stream: the error event with the safe message, done, then connection_close failed", () =>
    Effect.gen(function*() {
      const { call, port, release } = yield* serve
      yield* Deferred.succeed(release, undefined)
      yield* call("POST", "/s/fail1")
      const c = yield* TestClient.open(port, "/s/fail1/stream")
      yield* c.ended
      expect(c.text()).not.toContain("db down")
      expect(c.events().slice(-3).map((e) => [e.event, JSON.parse(e.data)])).toEqual([
        ["error", { message: "The event stream failed" }],
        ["done", { reason: "failed" }],
        ["connection_close", expect.objectContaining({ reason: "failed" })]
      ])
    }))
})
