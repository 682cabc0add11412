// The demo scaled out: two demo processes with REDIS_URL on one redis-server
// (started by the test), as the README's "Scaling out" section shows.
import { describe, expect, it } from "@effect/vitest"
import { RedisServer } from "@sluice/redis/testing"
import { Effect } from "effect"
import { post, readOnce, type Received, sluiceClient } from "../redis/support.ts"
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
    "a chat answer asked on one node resumes on the other with Last-Event-ID (exact), and a stop from the other ends it",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const env = { REDIS_URL: redis.url, DEMO_PUBLISH_TOKEN: token, DEMO_CHAT_PAUSE_MS: "100", DEMO_CHAT_RATE: "0" }
        const [one, two] = yield* Effect.all([
          Effect.acquireRelease(
            Effect.promise(() => startDemo({ env })),
            (d) => Effect.promise(() => d.stop("SIGKILL"))
          ),
          Effect.acquireRelease(
            Effect.promise(() => startDemo({ env })),
            (d) => Effect.promise(() => d.stop("SIGKILL"))
          )
        ], { concurrency: 2 })
        const text = (events: ReadonlyArray<Received>) =>
          events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data).text as string).join("")
        const reason = (events: ReadonlyArray<Received>) =>
          JSON.parse(events.find((e) => e.event === "connection_close")?.data ?? "{}").reason

        // Whole answer on node two, as the reference.
        const whole = yield* post(`${one!.url}/api/chat`, { prompt: "failover" })
        expect(whole.status).toBe(201)
        const reference = yield* readOnce(`${two!.url}/api/chat/${whole.body["id"]}/stream`)
        yield* reference.ended.pipe(Effect.timeout("30 seconds"))
        expect(reason(reference.events())).toBe("completed")
        expect(text(reference.events())).toContain("failover")

        // Asked on one, read there for a while, resumed on two after its last id.
        const asked = yield* post(`${one!.url}/api/chat`, { prompt: "failover" })
        const id = String(asked.body["id"])
        const first = yield* readOnce(`${one!.url}/api/chat/${id}/stream`, {
          leaveWhen: (events) => events.filter((e) => e.event === "token").length >= 8
        })
        yield* first.ended.pipe(Effect.timeout("30 seconds"))
        const lastId = first.events().filter((e) => e.event === "token").at(-1)!.id
        const rest = yield* readOnce(`${two!.url}/api/chat/${id}/stream`, { headers: { "last-event-id": lastId } })
        yield* rest.ended.pipe(Effect.timeout("30 seconds"))
        expect(text(first.events()) + text(rest.events())).toBe(text(reference.events()))
        expect(reason(rest.events())).toBe("completed")

        // Asked on one, stopped from two: both nodes' clients get stopped.
        const third = yield* post(`${one!.url}/api/chat`, { prompt: "stop me" })
        const watching = yield* readOnce(`${one!.url}/api/chat/${third.body["id"]}/stream`)
        yield* watching.until((events) => events.some((e) => e.event === "token")).pipe(Effect.timeout("30 seconds"))
        const stopped = yield* Effect.promise(() =>
          fetch(`${two!.url}/api/chat/${third.body["id"]}`, { method: "DELETE" })
        )
        expect(stopped.status).toBe(204)
        yield* watching.ended.pipe(Effect.timeout("30 seconds"))
        expect(reason(watching.events())).toBe("stopped")
        expect(watching.events().find((e) => e.event === "done")?.data).toBe(JSON.stringify({ reason: "stopped" }))
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
