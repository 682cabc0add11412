import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { Effect, Exit, Schedule, Scope, Stream } from "effect"
import { HttpRouter } from "effect/http"
import * as Http from "node:http"
import { SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

const ticking = () =>
  Stream.fromSchedule(Schedule.spaced("5 millis")).pipe(Stream.map((n) => SseEvent.make({ id: String(n), data: "t" })))

describe("SseServer shutdown", () => {
  it.live("open streams get connection_close/shutdown with a jittered retry, then end; the server stops promptly", () =>
    Effect.gen(function*() {
      const serverScope = yield* Scope.make()
      const { port, server } = yield* serve(
        HttpRouter.add("GET", "/e", SseResponse.stream(ticking)),
        { shutdownTimeout: "2 seconds" }
      ).pipe(Scope.provide(serverScope))
      const clients = yield* Effect.forEach([1, 2, 3], () => open(port, "/e"))
      yield* Effect.forEach(clients, (c) => c.awaitFrames(4), { discard: true })
      expect(server.open()).toBe(3)

      const started = Date.now()
      const report = yield* server.shutdown
      yield* Scope.close(serverScope, Exit.void)
      const elapsed = Date.now() - started

      expect(report).toMatchObject({ open: 3, closedGracefully: 3, forced: 0, batches: 1 })
      for (const client of clients) {
        yield* client.ended
        const events = client.events()
        const last = events[events.length - 1]!
        const beforeLast = events[events.length - 2]!
        expect(last.event).toBe("connection_close")
        expect(JSON.parse(last.data).reason).toBe("shutdown")
        expect(beforeLast.retry).toBeGreaterThanOrEqual(2400)
        expect(beforeLast.retry).toBeLessThanOrEqual(3600)
      }
      // Far below the platform's own 20 s wait for open responses.
      expect(elapsed).toBeLessThan(2_000)
    }))

  it.live("streams are closed in batches; a client that stopped reading is cut at the deadline", () =>
    Effect.gen(function*() {
      const serverScope = yield* Scope.make()
      const big = "x".repeat(64 * 1024)
      const { port, server } = yield* serve(
        HttpRouter.add(
          "GET",
          "/e",
          SseResponse.stream(
            ({ request }) =>
              request.url.includes("flood")
                ? Stream.fromSchedule(Schedule.spaced("1 millis")).pipe(Stream.map(() => SseEvent.data(big)))
                : ticking(),
            { writeTimeout: false }
          )
        ),
        { shutdownTimeout: "300 millis", shutdownBatchSize: 2 }
      ).pipe(Scope.provide(serverScope))
      const readers = yield* Effect.forEach([1, 2, 3, 4], () => open(port, "/e"))
      yield* Effect.forEach(readers, (c) => c.awaitFrames(3), { discard: true })
      // A client that never reads: its stream can take no close frame.
      const stuck = yield* Effect.acquireRelease(
        Effect.callback<Http.ClientRequest>((resume) => {
          const req = Http.get({ host: "127.0.0.1", port, path: "/e?flood", agent: false }, (res) => {
            res.pause()
            res.on("error", () => {})
            resume(Effect.succeed(req))
          })
          req.on("error", () => {})
        }),
        (req) => Effect.sync(() => req.destroy())
      )
      expect(stuck).toBeDefined()
      expect(server.open()).toBe(5)
      // Wait until its writer is blocked: socket and stream buffers full, mailbox full.
      expect(yield* until(() => server.connections().some((c) => c.size() === c.capacity))).toBe(true)

      const report = yield* server.shutdown
      expect(report.open).toBe(5)
      expect(report.batches).toBe(3)
      expect(report.forced).toBe(1)
      expect(report.closedGracefully).toBe(4)
      for (const client of readers) {
        yield* client.ended
        expect(JSON.parse(client.events().at(-1)!.data).reason).toBe("shutdown")
      }
      // New streams are refused while shutting down.
      const late = yield* open(port, "/e")
      expect(late.status).toBe(503)
      yield* Scope.close(serverScope, Exit.void)
    }))
})
