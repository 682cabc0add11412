// The demo scaled out: two demo processes with REDIS_URL on one redis-server
// (started by the test), as the README's "Scaling out" section shows.
import { describe, expect, it } from "@effect/vitest"
import { RedisServer } from "@sluice/redis/testing"
import { Effect } from "effect"
import { post, readOnce, sluiceClient } from "../redis/support.ts"
import { type DemoProcess, startDemo } from "./DemoProcess.ts"

const token = "test-token"

const demo = (redisUrl: string) =>
  Effect.acquireRelease(
    Effect.promise(() => startDemo({ env: { REDIS_URL: redisUrl, DEMO_PUBLISH_TOKEN: token } })),
    (d: DemoProcess) => Effect.promise(() => d.stop("SIGKILL"))
  )

describe("the demo on Redis (REDIS_URL), two nodes", () => {
  it.live(
    "a price published on one node reaches the ticker page's stream on the other; a task started on one streams on the other",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [one, two] = yield* Effect.all([demo(redis.url), demo(redis.url)], { concurrency: 2 })
        const ticker = yield* sluiceClient(`${one!.url}/api/ticker/stream`, 1)
        yield* ticker.opened
        const published = yield* post(`${two!.url}/api/ticker/publish`, { ticker: "ZZZ", price: 4.2 }, {
          authorization: `Bearer ${token}`
        })
        expect(published.status).toBe(202)
        yield* ticker.until((e) => e.event === "price_update" && JSON.parse(e.data).ticker === "ZZZ").pipe(
          Effect.timeout("20 seconds")
        )
        const event = ticker.events.find((e) => e.event === "price_update" && JSON.parse(e.data).ticker === "ZZZ")!
        expect(event.id).toBe(published.body["id"])

        const created = yield* post(`${one!.url}/api/tasks`, { steps: 3, stepMs: 20 })
        expect(created.status).toBe(201)
        const stream = yield* readOnce(`${two!.url}/api/tasks/${created.body["id"]}/stream`)
        yield* stream.ended.pipe(Effect.timeout("20 seconds"))
        const kinds = stream.events().filter((e) => e.event === "task_event").map((e) =>
          JSON.parse(e.data).event_type as string
        )
        expect(kinds[kinds.length - 1]).toBe("task_completed")
        expect(kinds.filter((k) => k === "task_completed")).toHaveLength(1)
        const close = stream.events().find((e) => e.event === "connection_close")!
        expect(JSON.parse(close.data).reason).toBe("task_completed")
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "with REDIS_URL pointing at no server, the demo stops at start naming the address",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        yield* redis.kill
        const failed = yield* Effect.flip(Effect.tryPromise({
          try: () => startDemo({ env: { REDIS_URL: redis.url } }),
          catch: (e) => e as Error
        }))
        // The process exits before listening; its output names the address.
        expect(failed.message).toContain("exited before listening")
        expect(failed.message).toContain(`Redis at ${redis.url} is unavailable (connect)`)
      }).pipe(Effect.scoped),
    60_000
  )
})
