// Stopping the demo server: on SIGTERM or SIGINT every open stream gets
// connection_close with reason "shutdown" and ends, and the process exits.
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import { startDemo } from "./DemoProcess.ts"
import { awaitFrames, framesOf, json, postJson } from "./support.ts"

describe("demo: shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.live(`${signal}: open task, version and ticker streams get connection_close shutdown, then it exits`, () =>
      Effect.gen(function*() {
        const demo = yield* Effect.acquireRelease(
          Effect.promise(() => startDemo()),
          (d) => Effect.promise(() => d.stop("SIGKILL"))
        )
        const task = yield* Effect.promise(() => postJson(`${demo.url}/api/tasks`, { steps: 100, stepMs: 1_000 }))
        expect(task.status).toBe(201)
        const clients = yield* Effect.all([
          TestClient.open(demo.port, `/api/tasks/${task.body.id}/stream`),
          TestClient.open(demo.port, "/api/version/stream"),
          TestClient.open(demo.port, "/api/ticker/stream")
        ])
        // Each has at least its retry hint, connection_open and a first event.
        yield* Effect.forEach(clients, (c) => awaitFrames(c, 3), { discard: true })

        const exit = yield* Effect.promise(() => demo.stop(signal, 10_000))
        yield* Effect.forEach(clients, (c) => c.ended.pipe(Effect.timeout("5 seconds")), { discard: true })
        for (const client of clients) {
          const frames = framesOf(client)
          const open = json(frames.find((f) => f.name === "connection_open"))
          expect(frames.at(-1)?.name).toBe("connection_close")
          expect(json(frames.at(-1))).toEqual({ reason: "shutdown", connection_id: open.connection_id })
        }
        // It exited by itself (not killed by the signal's default action),
        // with 0: stopping on a signal is how a server is meant to stop.
        expect(exit.signal).toBe(null)
        expect(exit.code).toBe(0)
      }))
  }
})
