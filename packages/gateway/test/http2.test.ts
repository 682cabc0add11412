/**
 * HTTP/2: the gateway serves cleartext HTTP/2 with prior knowledge (h2c) on
 * the same port as HTTP/1.1; checked with Node's own http2 client.
 */
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Deferred, Effect } from "effect"
import * as Http2 from "node:http2"
import { secret, startGateway } from "./support/gateway.ts"

interface H2Stream {
  readonly headers: Http2.IncomingHttpHeaders
  readonly text: () => string
  /** Waits until the body holds `n` frames. */
  readonly awaitFrames: (n: number) => Effect.Effect<void>
}

const session = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() => Http2.connect(`http://127.0.0.1:${port}`)),
    (s) => Effect.sync(() => s.destroy())
  )

const open = (s: Http2.ClientHttp2Session, path: string) =>
  Effect.callback<H2Stream>((resume) => {
    const req = s.request({ ":path": path, ":method": "GET" })
    let body = ""
    const waiters: Array<{ n: number; done: Deferred.Deferred<void> }> = []
    const frames = () => body.split("\n\n").length - 1
    req.setEncoding("utf8")
    req.on("data", (chunk: string) => {
      body += chunk
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (frames() >= waiters[i]!.n) Deferred.doneUnsafe(waiters.splice(i, 1)[0]!.done, Effect.void)
      }
    })
    req.on("response", (headers) =>
      resume(Effect.succeed({
        headers,
        text: () => body,
        awaitFrames: (n) =>
          Effect.suspend(() => {
            if (frames() >= n) return Effect.void
            const done = Deferred.makeUnsafe<void>()
            waiters.push({ n, done })
            return Deferred.await(done)
          })
      })))
    req.on("error", (e) => resume(Effect.die(e)))
  })

const post = (s: Http2.ClientHttp2Session, path: string, body: unknown) =>
  Effect.callback<{ status: number; body: string }>((resume) => {
    const req = s.request({
      ":path": path,
      ":method": "POST",
      "content-type": "application/json",
      authorization: `Bearer ${secret}`
    })
    let status = 0
    let text = ""
    req.on("response", (h) => (status = Number(h[":status"])))
    req.setEncoding("utf8")
    req.on("data", (c: string) => (text += c))
    req.on("end", () => resume(Effect.succeed({ status, body: text })))
    req.on("error", (e) => resume(Effect.die(e)))
    req.end(JSON.stringify(body))
  })

describe("HTTP/2 (h2c with prior knowledge)", () => {
  it.live("a topic stream and a keyed stream over one HTTP/2 connection, fed over the same connection", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      const s = yield* session(port)
      const topic = yield* open(s, "/subscribe?topic=news")
      const keyed = yield* open(s, "/sse/k1")
      expect(topic.headers[":status"]).toBe(200)
      expect(topic.headers["content-type"]).toBe("text/event-stream; charset=utf-8")
      expect(keyed.headers["x-correlation-id"]).toMatch(/^[0-9a-f-]{36}$/)
      yield* topic.awaitFrames(2)
      yield* keyed.awaitFrames(2)
      expect((yield* post(s, "/publish", { topic: "news", data: "over h2" })).status).toBe(200)
      expect((yield* post(s, "/internal/send", { key: "k1", event: { event: "task_event", data: "k" } })).body)
        .toBe(JSON.stringify({ result: "delivered" }))
      yield* topic.awaitFrames(3)
      yield* keyed.awaitFrames(3)
      expect(topic.text()).toContain("data: over h2\n\n")
      expect(keyed.text()).toContain("event: task_event\ndata: k\n\n")
      // HTTP/1.1 still works on the same port.
      const h1 = yield* TestClient.open(port, "/subscribe?topic=news")
      yield* h1.awaitFrames(2)
      expect(h1.status).toBe(200)
    }))
})
