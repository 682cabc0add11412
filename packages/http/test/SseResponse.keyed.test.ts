import { describe, expect, it } from "@effect/vitest"
import { Registry, SseEvent } from "@sluice/core"
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

const taskId = () => Effect.map(HttpRouter.params, (p) => p["id"] ?? "")

describe("SseResponse.keyed", () => {
  it.live("pending events on connect, replacement of the first client, terminal close", () =>
    Effect.gen(function*() {
      const tasks = yield* Registry.make()
      const { port } = yield* serve(HttpRouter.add("GET", "/tasks/:id/stream", SseResponse.keyed(tasks, taskId)))
      yield* Registry.send(tasks, "42", SseEvent.make({ event: "progress", data: "10" }))
      const first = yield* open(port, "/tasks/42/stream")
      yield* first.awaitFrames(3)
      expect(first.events().map((e) => e.event)).toEqual(["", "connection_open", "progress"])

      const second = yield* open(port, "/tasks/42/stream")
      yield* first.ended
      const closing = first.events().at(-1)!
      expect([closing.event, JSON.parse(closing.data).reason]).toEqual(["connection_close", "replaced"])
      yield* second.awaitFrames(2)
      expect(yield* until(() => tasks.isLive("42"))).toBe(true)

      yield* Registry.send(tasks, "42", SseEvent.make({ event: "progress", data: "20" }))
      yield* Registry.send(tasks, "42", SseEvent.make({ event: "done", data: "100" }), { terminal: "task_completed" })
      yield* second.ended
      expect(second.events().slice(2).map((e) => [e.event, e.data])).toEqual([
        ["progress", "20"],
        ["done", "100"],
        [
          "connection_close",
          JSON.stringify({
            reason: "task_completed",
            connection_id: JSON.parse(second.events()[1]!.data).connection_id
          })
        ]
      ])
    }))

  it.live("an unknown key: 200 with connection_open, error and connection_close, or a 404 when configured", () =>
    Effect.gen(function*() {
      const tasks = yield* Registry.make({ exists: (key) => Effect.succeed(key === "known") })
      const { port } = yield* serve(Layer.mergeAll(
        HttpRouter.add(
          "GET",
          "/a/:id",
          SseResponse.keyed(tasks, taskId, { notFound: { reason: "task_not_found", message: "no such task" } })
        ),
        HttpRouter.add("GET", "/b/:id", SseResponse.keyed(tasks, taskId, { notFound: { status: 404 } }))
      ))
      const a = yield* open(port, "/a/missing")
      yield* a.ended
      expect(a.status).toBe(200)
      expect(a.events().map((e) => e.event)).toEqual(["", "connection_open", "error", "connection_close"])
      expect(JSON.parse(a.events()[2]!.data)).toEqual({ message: "no such task" })
      expect(JSON.parse(a.events()[3]!.data).reason).toBe("task_not_found")
      const b = yield* open(port, "/b/missing")
      yield* b.ended
      expect(b.status).toBe(404)
      expect(b.headers["content-type"]).toBe("application/problem+json")
      const known = yield* open(port, "/b/known")
      yield* known.awaitFrames(2)
      expect(known.status).toBe(200)
    }))
})
