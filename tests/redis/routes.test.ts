// SSE routes over Redis while Redis is down: a hub route whose replay cannot
// be read, and a keyed route whose registry cannot be reached, answer 503
// with Retry-After (no internal address in the body); live subscribers do
// not need Redis to subscribe.
import { describe, expect, it } from "@effect/vitest"
import { Hub } from "@sluice/core"
import { SseResponse } from "@sluice/http"
import { TestServer } from "@sluice/http/testing"
import { RedisConnection, RedisLog, RedisRegistry } from "@sluice/redis"
import { RedisServer } from "@sluice/redis/testing"
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"

const get = (port: number, path: string, headers: Record<string, string> = {}) =>
  Effect.tryPromise(async () => {
    const controller = new AbortController()
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: controller.signal })
    const body = response.status === 200 ? "" : await response.text()
    controller.abort()
    return { status: response.status, retryAfter: response.headers.get("retry-after"), body }
  })

describe("SSE routes over Redis while Redis is down", () => {
  it.live(
    "a replay that cannot be read and a keyed connect that cannot claim answer 503 with Retry-After",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const services = yield* Layer.build(
          RedisLog.layer({ timeout: "1 second" }).pipe(Layer.provideMerge(RedisConnection.layer({ url: server.url })))
        )
        const hub = yield* Effect.provideContext(RedisLog.hub("events"), services)
        const tasks = yield* Effect.provideContext(RedisRegistry.make({ timeout: "1 second" }), services)
        yield* Hub.publish(hub, { data: "1" })
        const { port } = yield* TestServer.serve(Layer.mergeAll(
          HttpRouter.add("GET", "/events", SseResponse.hub(hub)),
          HttpRouter.add("GET", "/tasks/:id", SseResponse.keyed(tasks, () => Effect.succeed("t1")))
        ))
        yield* server.kill
        const replay = yield* get(port, "/events", { "last-event-id": `${hub.epoch}-1` })
        expect([replay.status, replay.retryAfter]).toEqual([503, "2"])
        expect(replay.body).not.toContain(server.url)
        const keyed = yield* get(port, "/tasks/t1")
        expect([keyed.status, keyed.retryAfter]).toEqual([503, "5"])
        // Live only: nothing to read, the subscriber is in (it gets events once Redis is back).
        const live = yield* get(port, "/events")
        expect(live.status).toBe(200)
      }).pipe(Effect.scoped),
    60_000
  )
})
