import { describe, expect, it } from "@effect/vitest"
import { Registry } from "@sluice/core"
import { SeededScheduler, TestSink } from "@sluice/core/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redis from "effect/persistence/Redis"
import * as Schedule from "effect/Schedule"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import * as RedisRegistry from "../src/RedisRegistry.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"
import { closeFrames, connect, dataOf, ev } from "./support.ts"

/** A node: its own connection and its side of the registry. */
const node = (server: RedisServer.RedisServer, options: RedisRegistry.Options = {}) =>
  Effect.gen(function*() {
    const redis = yield* connect(server)
    const registry = yield* RedisRegistry.make({ address: server.url, handover: "1 second", ...options }).pipe(
      Effect.provideService(Redis.Redis, redis)
    )
    return { redis, registry }
  })

/** A client of `key` on `registry`, in its own scope. */
const client = (registry: Registry.Registry, key: string) =>
  Effect.gen(function*() {
    const sink = yield* TestSink.make()
    const scope = yield* Scope.make()
    const connection = yield* Registry.connect(registry, key, { sink: sink.sink, heartbeat: false, closeFrames }).pipe(
      Scope.provide(scope)
    )
    const seen = () => dataOf(sink.text())
    // Waits (bounded) until the client has received `n` frames.
    const until = (n: number) =>
      Effect.gen(function*() {
        while (seen().length < n) yield* sink.awaitWrites(sink.chunks().length + 1)
        return seen()
      }).pipe(Effect.timeout("10 seconds"))
    return { connection, sink, scope, seen, until, leave: Scope.close(scope, Exit.void) }
  })

describe("RedisRegistry on a real redis-server", () => {
  it.live("progress sent on node A reaches the client on node B, in order", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const c = yield* client(b.registry, "task-1")
      for (const p of ["10", "20", "30"]) expect(yield* Registry.send(a.registry, "task-1", ev(p))).toBe("delivered")
      expect(yield* c.until(3)).toEqual(["10", "20", "30"])
      expect(b.registry.isLive("task-1")).toBe(true)
    }).pipe(Effect.scoped))

  it.live("events sent while nobody listens wait in Redis and arrive first on whatever node connects", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      for (const p of ["1", "2", "3"]) expect(yield* Registry.send(a.registry, "job", ev(p))).toBe("pending")
      const c = yield* client(b.registry, "job")
      yield* Registry.send(a.registry, "job", ev("4"))
      expect(yield* c.until(4)).toEqual(["1", "2", "3", "4"])
      // Taken, so acknowledged: a later connection does not get them again.
      yield* c.leave
      const again = yield* client(a.registry, "job")
      yield* Registry.send(b.registry, "job", ev("5"))
      expect(yield* again.until(1)).toEqual(["5"])
    }).pipe(Effect.scoped))

  for (const order of ["A then B", "B then A"] as const) {
    it.live(`replacement across nodes (${order}): the old client gets replaced, its cleanup never removes the new one`, () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const a = yield* node(server)
        const b = yield* node(server)
        const [first, second] = order === "A then B" ? [a, b] : [b, a]
        const old = yield* client(first.registry, "k")
        yield* Registry.send(a.registry, "k", ev("before"))
        expect(yield* old.until(1)).toEqual(["before"])
        const next = yield* client(second.registry, "k")
        expect(yield* old.until(2)).toEqual(["before", "connection_close:replaced"])
        // The old client's scope closes after the replacement: its cleanup must not touch the new one.
        yield* old.leave
        expect(yield* Registry.send(first.registry, "k", ev("after"))).toBe("delivered")
        expect(yield* next.until(1)).toEqual(["after"])
        expect(second.registry.isLive("k")).toBe(true)
        expect(first.registry.isLive("k")).toBe(false)
      }).pipe(Effect.scoped))
  }

  it.live("a connection that leaves before its replacement is claimed: the stale release does not remove the successor", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const old = yield* client(a.registry, "k")
      const next = yield* client(b.registry, "k")
      // Both orders of "old leaves" and "new claims" race in Redis; the generation decides.
      yield* old.leave
      yield* Registry.send(a.registry, "k", ev("x"))
      expect(yield* next.until(1)).toEqual(["x"])
    }).pipe(Effect.scoped))

  it.live(
    "seeded interleavings: the old client leaves while a new one connects on another node, in both orders",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const a = yield* node(server)
        const b = yield* node(server)
        for (let seed = 1; seed <= 12; seed++) {
          const key = `k${seed}`
          // Odd seeds: the old connection is on A and the new on B; even: the other way.
          const [first, second] = seed % 2 === 1 ? [a, b] : [b, a]
          const old = yield* client(first.registry, key)
          const race = Effect.gen(function*() {
            const leaving = yield* Effect.forkChild(old.leave)
            const next = yield* client(second.registry, key)
            yield* Fiber.join(leaving)
            return next
          }).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.3)))
          const next = yield* race
          yield* old.connection.outcome
          expect(yield* Registry.send(first.registry, key, ev(`to new ${seed}`))).toBe("delivered")
          expect(yield* next.until(1)).toEqual([`to new ${seed}`])
          expect(second.registry.isLive(key)).toBe(true)
          expect(first.registry.isLive(key)).toBe(false)
          yield* next.leave
        }
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "seeded interleavings: two nodes connect the same key at once: exactly one stays, the other is replaced",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const a = yield* node(server)
        const b = yield* node(server)
        for (let seed = 1; seed <= 12; seed++) {
          const key = `both${seed}`
          const [onA, onB] = yield* Effect.all([client(a.registry, key), client(b.registry, key)], {
            concurrency: 2
          }).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.3)))
          // Whichever claimed last owns the key; the other ends replaced.
          const loser = yield* Effect.raceFirst(
            Effect.as(onA.connection.outcome, onA),
            Effect.as(onB.connection.outcome, onB)
          ).pipe(Effect.timeout("10 seconds"))
          const winner = loser === onA ? onB : onA
          expect(loser.seen()).toEqual(["connection_close:replaced"])
          yield* Registry.send(a.registry, key, ev("x"))
          expect(yield* winner.until(1)).toEqual(["x"])
          expect([a.registry.isLive(key), b.registry.isLive(key)].filter(Boolean)).toHaveLength(1)
          yield* winner.leave
        }
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("a terminal send on node A ends the stream on node B; later sends fail; a late client learns the end", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const c = yield* client(b.registry, "job")
      yield* Registry.send(a.registry, "job", ev("50"))
      yield* Registry.send(a.registry, "job", ev("100"), { terminal: "task_completed" })
      expect(yield* c.until(3)).toEqual(["50", "100", "connection_close:task_completed"])
      const late = yield* Effect.flip(Registry.send(a.registry, "job", ev("late")))
      expect(late._tag).toBe("KeyClosedError")
      const again = yield* client(a.registry, "job")
      expect(yield* again.until(2)).toEqual(["100", "connection_close:task_completed"])
    }).pipe(Effect.scoped))

  it.live("the outbox is bounded: sliding counts its drops", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, { pending: { capacity: 2 } })
      for (const p of ["1", "2", "3", "4"]) yield* Registry.send(a.registry, "k", ev(p))
      expect(a.registry.stats().droppedOverflow).toBe(2)
      const c = yield* client(a.registry, "k")
      expect(yield* c.until(2)).toEqual(["3", "4"])
      const strict = yield* node(server, { name: "strict", pending: { capacity: 1, strategy: "fail" } })
      yield* Registry.send(strict.registry, "k", ev("1"))
      expect((yield* Effect.flip(Registry.send(strict.registry, "k", ev("2"))))._tag).toBe("PendingFullError")
    }).pipe(Effect.scoped))

  it.live("disconnect from another node closes the stream and forgets what waited", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const c = yield* client(b.registry, "k")
      expect(yield* Registry.disconnect(a.registry, "k", "stopped")).toBe(true)
      expect(yield* c.until(1)).toEqual(["connection_close:stopped"])
    }).pipe(Effect.scoped))

  it.live("Redis gone: sends fail with RegistryUnavailableError naming the address; back: they work again", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, { timeout: "1 second" })
      yield* server.kill
      const failed = yield* Effect.flip(Registry.send(a.registry, "k", ev("x")))
      expect(failed._tag).toBe("RegistryUnavailableError")
      expect(failed.message).toContain(server.url)
      yield* server.start
      const ok = yield* Registry.send(a.registry, "k", ev("y")).pipe(
        Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") })
      )
      expect(ok).toBe("pending")
    }).pipe(Effect.scoped))
})
