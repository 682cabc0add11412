// Keyed streams across real processes (tests/redis/app.ts on one
// redis-server): sends from one node reach the client on another, the
// outbox waits in Redis for a client on any node, replacement and terminal
// sends cross nodes, and a killed node's events are not lost.
import { describe, expect, it, layer } from "@effect/vitest"
import { RedisConnection } from "@sluice/redis"
import { RedisServer } from "@sluice/redis/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redis from "effect/persistence/Redis"
import * as Schedule from "effect/Schedule"
import * as AppProcess from "./AppProcess.ts"
import { post, readOnce, type Received } from "./support.ts"

/** A client of the test's own (sluice's connection layer). */
const connect = (server: RedisServer.RedisServer) =>
  Effect.flatMap(
    Layer.build(RedisConnection.layer({ url: server.url })),
    (context) => Effect.provideContext(Redis.Redis, context)
  )

/** Waits (polling Redis, bounded) until the key's outbox holds nothing. */
const untilOutboxEmpty = (redis: Redis.Redis["Service"], key: string) =>
  redis.send<number>("ZCARD", `sluice:tasks:k:{${key}}:q`).pipe(
    Effect.filterOrFail((n) => n === 0),
    Effect.retry({ times: 250, schedule: Schedule.spaced("20 millis") })
  )

const nodes = (url: string, names: ReadonlyArray<string>) =>
  Effect.all(names.map((name) => AppProcess.start(name, url)), { concurrency: "unbounded" })

const send = (app: AppProcess.AppProcess, key: string, data: string, terminal?: string) =>
  Effect.map(
    post(`${app.url}/tasks/${key}/send`, terminal === undefined ? { data } : { data, terminal }),
    (answer) => answer.body["result"] ?? answer.body["error"]
  )

// What a keyed client saw, without the opening events: progress data and close reasons.
const seen = (events: ReadonlyArray<Received>) =>
  events.filter((e) => e.event === "progress" || e.event === "connection_close").map((e) =>
    e.event === "progress" ? e.data : `close:${JSON.parse(e.data).reason}`
  )

// Three nodes shared by the tests that leave them running (each uses its own keys).
class Cluster extends Context.Service<Cluster, {
  readonly nodes: ReadonlyArray<AppProcess.AppProcess>
}>()("tests/redis/keyed/Cluster") {
  static readonly layer = Layer.effect(
    Cluster,
    Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      return Cluster.of({ nodes: yield* nodes(redis.url, ["a", "b", "c"]) })
    })
  )
}

layer(Cluster.layer, { excludeTestServices: true, timeout: "120 seconds" })(
  "keyed streams across three processes",
  (shared) => {
    shared.effect(
      "progress from node A reaches the client on node B; the outbox waits for a client on node C; a terminal send from A closes the stream on C",
      () =>
        Effect.gen(function*() {
          const [a, b, c] = (yield* Cluster).nodes
          // Live: client on B, progress from A.
          const onB = yield* readOnce(`${b!.url}/tasks/t1/stream`)
          yield* onB.opened
          for (const p of ["10", "20", "30"]) expect(yield* send(a!, "t1", p)).toBe("delivered")
          // Outbox: sent from A while nobody listens; the client connects on C.
          for (const p of ["1", "2", "3"]) expect(yield* send(a!, "t2", p)).toBe("pending")
          const onC = yield* readOnce(`${c!.url}/tasks/t2/stream`)
          yield* onC.opened
          expect(yield* send(b!, "t2", "4")).toBe("delivered")
          expect(yield* send(a!, "t2", "done", "task_completed")).toBe("delivered")
          yield* onC.ended.pipe(Effect.timeout("20 seconds"))
          expect(seen(onC.events())).toEqual(["1", "2", "3", "4", "done", "close:task_completed"])
          expect(yield* send(b!, "t2", "late")).toBe("KeyClosedError")
          // A client that comes back later learns the end at once, on any node.
          const late = yield* readOnce(`${b!.url}/tasks/t2/stream`)
          yield* late.ended.pipe(Effect.timeout("20 seconds"))
          expect(seen(late.events())).toEqual(["done", "close:task_completed"])
          expect(seen(onB.events())).toEqual(["10", "20", "30"])
        }),
      60_000
    )

    for (const order of ["A then B", "B then A"] as const) {
      shared.effect(
        `replacement across nodes (${order}): the first client gets connection_close replaced, the second gets what follows`,
        () =>
          Effect.gen(function*() {
            const [a, b, c] = (yield* Cluster).nodes
            const key = order === "A then B" ? "k1" : "k2"
            const [first, second] = order === "A then B" ? [a!, b!] : [b!, a!]
            const old = yield* readOnce(`${first.url}/tasks/${key}/stream`)
            yield* old.opened
            yield* send(c!, key, "before")
            const next = yield* readOnce(`${second.url}/tasks/${key}/stream`)
            yield* old.ended.pipe(Effect.timeout("20 seconds"))
            expect(seen(old.events())).toEqual(["before", "close:replaced"])
            expect(yield* send(c!, key, "after")).toBe("delivered")
            yield* send(c!, key, "end", "task_completed")
            yield* next.ended.pipe(Effect.timeout("20 seconds"))
            expect(seen(next.events())).toEqual(["after", "end", "close:task_completed"])
          }),
        60_000
      )
    }
  }
)

describe("keyed streams when a node dies", () => {
  it.live(
    "kill -9 the node holding a key: what its client took is not sent again; events sent meanwhile wait in Redis for the client on another node",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b, c] = yield* nodes(redis.url, ["a", "b", "c"])
        const client = yield* connect(redis)
        const onA = yield* readOnce(`${a!.url}/tasks/job/stream`)
        yield* onA.opened
        yield* send(c!, "job", "1")
        // Taken by the client on A, and acknowledged (the outbox is empty again).
        yield* untilOutboxEmpty(client, "job")
        yield* a!.kill
        yield* onA.ended.pipe(Effect.timeout("20 seconds"))
        // The dead node's subscription is gone: the events wait in the outbox.
        expect(yield* send(c!, "job", "2")).toBe("pending")
        expect(yield* send(c!, "job", "3")).toBe("pending")
        const onB = yield* readOnce(`${b!.url}/tasks/job/stream`)
        yield* onB.opened
        yield* send(c!, "job", "4", "task_completed")
        yield* onB.ended.pipe(Effect.timeout("20 seconds"))
        expect(seen(onA.events())).toEqual(["1"])
        expect(seen(onB.events())).toEqual(["2", "3", "4", "close:task_completed"])
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "an event on its way to a node that dies before its connection took it is not lost: the next client gets it",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b, c] = yield* nodes(redis.url, ["a", "b", "c"])
        const onA = yield* readOnce(`${a!.url}/tasks/job/stream`)
        yield* onA.opened
        // Node A is stopped: Redis hands it the event (its socket is open), it never takes it.
        yield* a!.pause
        expect(yield* send(c!, "job", "in flight")).toBe("delivered")
        yield* a!.kill
        yield* onA.ended.pipe(Effect.timeout("20 seconds"))
        const onB = yield* readOnce(`${b!.url}/tasks/job/stream`)
        yield* onB.opened
        yield* send(c!, "job", "after", "task_completed")
        yield* onB.ended.pipe(Effect.timeout("20 seconds"))
        expect(seen(onA.events())).toEqual([])
        expect(seen(onB.events())).toEqual(["in flight", "after", "close:task_completed"])
      }).pipe(Effect.scoped),
    120_000
  )
})
