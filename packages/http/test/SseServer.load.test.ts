import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { Effect, Layer, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import * as Http from "node:http"
import { SseResponse, SseServer } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

const get = (port: number, path: string) =>
  Effect.callback<{ status: number; headers: Http.IncomingHttpHeaders; body: string }>((resume) => {
    const req = Http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      // A stream answers 200 and never ends: its head is enough.
      if (res.statusCode === 200) {
        resume(Effect.succeed({ status: 200, headers: res.headers, body: "" }))
        req.destroy()
        return
      }
      let body = ""
      res.on("data", (c: Buffer) => (body += c.toString()))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body })))
    })
    req.on("error", (e) => resume(Effect.die(e)))
  })

// Keeps the event loop busy: `blockMs` of work every few milliseconds, so
// that every timer (the load monitor's too) runs late.
const hog = (blockMs: number) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      setInterval(() => {
        const end = performance.now() + blockMs
        while (performance.now() < end) {
          // busy
        }
      }, 5)
    ),
    (timer) => Effect.sync(() => clearInterval(timer))
  )

const ticks = HttpRouter.add(
  "GET",
  "/ticks",
  SseResponse.stream(() =>
    Stream.fromSchedule(Schedule.spaced("20 millis")).pipe(Stream.map((n) => SseEvent.data(String(n))))
  )
)

describe("SseServer admission by load", () => {
  it.live(
    "a lagging event loop: new streams get 503 with a jittered Retry-After, open streams keep flowing, then it recovers",
    () =>
      Effect.gen(function*() {
        const { port, server } = yield* serve(ticks, {
          retryAfter: "4 seconds",
          load: { maxEventLoopDelay: "25 millis", sampleInterval: "50 millis", maxHeapUsed: false }
        })
        const before = yield* open(port, "/ticks")
        yield* before.awaitFrames(4)
        expect(server.load().overloaded).toBe(undefined)

        yield* Effect.scoped(Effect.gen(function*() {
          yield* hog(60)
          expect(yield* until(() => server.load().overloaded === "event_loop_delay", 5_000_000)).toBe(true)
          expect(server.load().eventLoopDelayMillis).toBeGreaterThan(25)
          const refused = yield* get(port, "/ticks")
          expect(refused.status).toBe(503)
          const retryAfter = Number(refused.headers["retry-after"])
          expect(retryAfter).toBeGreaterThanOrEqual(4)
          expect(retryAfter).toBeLessThanOrEqual(8)
          expect(refused.headers["content-type"]).toBe("application/problem+json")
          const problem = JSON.parse(refused.body)
          expect(problem).toMatchObject({ status: 503, title: "Service Unavailable" })
          expect(problem.detail).toContain("event-loop delay")
          // The stream that was already open still gets its events.
          const seen = before.events().length
          yield* before.awaitFrames(seen + 2)
        }))

        // The hog is gone: the next samples are calm, and streams are admitted again.
        expect(yield* until(() => server.load().overloaded === undefined, 5_000_000)).toBe(true)
        expect((yield* get(port, "/ticks")).status).toBe(200)
        expect(server.open()).toBeGreaterThanOrEqual(1)
      }),
    30_000
  )

  it.live("memory thresholds refuse with their own reason; load: false admits by counts only", () =>
    Effect.gen(function*() {
      // A heap share no process is below: every new stream is refused for memory.
      const full = yield* serve(ticks, { load: { maxEventLoopDelay: false, maxHeapUsed: 1e-9 } })
      const refused = yield* get(full.port, "/ticks")
      expect(refused.status).toBe(503)
      expect(JSON.parse(refused.body).detail).toContain("V8 heap")
      expect(full.server.load().overloaded).toBe("heap")

      const scarce = yield* serve(ticks, {
        load: { maxEventLoopDelay: false, maxHeapUsed: false, minAvailableMemory: Number.MAX_SAFE_INTEGER }
      })
      const short = yield* get(scarce.port, "/ticks")
      expect(short.status).toBe(503)
      expect(JSON.parse(short.body).detail).toContain("memory left")

      const off = yield* serve(ticks, { load: false })
      expect((yield* get(off.port, "/ticks")).status).toBe(200)
      expect(off.server.load()).toMatchObject({ eventLoopDelayMillis: 0, overloaded: undefined })
    }))

  it.effect("invalid load options fail the layer, naming the option", () =>
    Effect.gen(function*() {
      const build = (load: SseServer.LoadOptions) => Effect.exit(Layer.build(SseServer.layer({ load })))
      expect(String(yield* build({ maxHeapUsed: 2 }))).toContain("load.maxHeapUsed")
      expect(String(yield* build({ maxEventLoopDelay: "soon" as never }))).toContain("load.maxEventLoopDelay")
      expect(String(yield* build({ sampleInterval: "1 millis" }))).toContain("load.sampleInterval")
      expect(String(yield* build({ minAvailableMemory: -1 }))).toContain("load.minAvailableMemory")
    }))
})
