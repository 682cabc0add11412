// Connections named by tokens across nodes (RedisRegistry.makeWithTokens on
// a real redis-server): a token reaches its connection from any node, and
// once that connection is replaced, closed, gone or its node's lease ran
// out, the token is unknown everywhere and nothing is sent.
import { describe, expect, it } from "@effect/vitest"
import type { Connection } from "@sluice/core"
import { Registry } from "@sluice/core"
import { TestSink } from "@sluice/core/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redis from "effect/persistence/Redis"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as RedisRegistry from "../src/RedisRegistry.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"
import { closeFrames, connect, dataOf, ev } from "./support.ts"

const node = (server: RedisServer.RedisServer, options: RedisRegistry.Options = {}) =>
  Effect.gen(function*() {
    const redis = yield* connect(server)
    const tokens = yield* RedisRegistry.makeWithTokens({ address: server.url, handover: "1 second", ...options }).pipe(
      Effect.provideService(Redis.Redis, redis)
    )
    return { redis, tokens }
  })

/** A client of `key` under `token`, in its own scope; `released` resolves with the outcome once Redis let go. */
const client = (tokens: RedisRegistry.WithTokens, key: string, token: string) =>
  Effect.gen(function*() {
    const sink = yield* TestSink.make()
    const scope = yield* Scope.make()
    const released = yield* Deferred.make<Connection.Outcome>()
    const connection = yield* tokens.connect(key, token, {
      sink: sink.sink,
      heartbeat: false,
      closeFrames,
      onReleased: (outcome) => Deferred.doneUnsafe(released, Exit.succeed(outcome))
    }).pipe(Scope.provide(scope))
    const seen = () => dataOf(sink.text())
    const until = (n: number) =>
      Effect.gen(function*() {
        while (seen().length < n) yield* sink.awaitWrites(sink.chunks().length + 1)
        return seen()
      }).pipe(Effect.timeout("10 seconds"))
    return { connection, seen, until, released: Deferred.await(released), leave: Scope.close(scope, Exit.void) }
  })

describe("RedisRegistry tokens on a real redis-server", () => {
  it.live("a send and a disconnect by token from node A reach the connection on node B", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const c = yield* client(b.tokens, "task", "tok-1")
      expect(yield* a.tokens.send("tok-1", ev("10"))).toBe("delivered")
      expect(yield* c.until(1)).toEqual(["10"])
      expect(b.tokens.localKey("tok-1")).toBe("task")
      expect(a.tokens.localKey("tok-1")).toBeUndefined()
      expect(yield* a.tokens.disconnect("tok-1", "task_cancelled")).toBe(true)
      expect(yield* c.until(2)).toEqual(["10", "connection_close:task_cancelled"])
      const outcome = yield* c.released
      expect(outcome).toMatchObject({ _tag: "Closed", reason: "task_cancelled" })
      expect((yield* Effect.flip(a.tokens.send("tok-1", ev("late"))))._tag).toBe("UnknownTokenError")
    }).pipe(Effect.scoped))

  it.live("replaced on another node: the old token is unknown and sends nothing; the key and the new token reach the new client", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const old = yield* client(a.tokens, "task", "tok-old")
      const next = yield* client(b.tokens, "task", "tok-new")
      expect(yield* old.until(1)).toEqual(["connection_close:replaced"])
      for (const from of [a, b]) {
        const refused = yield* Effect.flip(from.tokens.send("tok-old", ev("stale")))
        expect(refused._tag).toBe("UnknownTokenError")
        expect(refused.message).toContain("tok-old")
        expect((yield* Effect.flip(from.tokens.disconnect("tok-old", "x")))._tag).toBe("UnknownTokenError")
      }
      expect(yield* a.tokens.send("tok-new", ev("1"))).toBe("delivered")
      expect(yield* Registry.send(a.tokens.registry, "task", ev("2"))).toBe("delivered")
      expect(yield* next.until(2)).toEqual(["1", "2"])
      // Nothing of the stale sends was recorded for the key.
      expect(yield* b.redis.send<string>("HGET", "sluice:registry:k:{task}", "n")).toBe("2")
    }).pipe(Effect.scoped))

  it.live("a client that left: once released, its token is unknown on every node (and a terminal send closes it too)", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server)
      const b = yield* node(server)
      const gone = yield* client(b.tokens, "t1", "tok-gone")
      yield* gone.leave
      expect(yield* gone.released).toMatchObject({ _tag: "Interrupted" })
      expect((yield* Effect.flip(a.tokens.send("tok-gone", ev("x"))))._tag).toBe("UnknownTokenError")
      expect(Number(yield* a.redis.send<number>("EXISTS", "sluice:registry:tk:tok-gone"))).toBe(0)

      const done = yield* client(b.tokens, "t2", "tok-done")
      expect(yield* a.tokens.send("tok-done", ev("100"), { terminal: "task_completed" })).toBe("delivered")
      expect(yield* done.until(2)).toEqual(["100", "connection_close:task_completed"])
      expect((yield* Effect.flip(a.tokens.send("tok-done", ev("after"))))._tag).toBe("UnknownTokenError")
      expect((yield* Effect.flip(a.tokens.send("tok-never", ev("x"))))._tag).toBe("UnknownTokenError")
    }).pipe(Effect.scoped))

  it.live("a token lives while its node renews; once the registration's lease has run out (a dead node), it is unknown", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, { lease: "1 second", positionCheck: "100 millis" })
      const b = yield* node(server)
      const c = yield* client(a.tokens, "task", "tok-1")
      const leaseOf = b.redis.send<string>("HGET", "sluice:registry:k:{task}", "lu").pipe(Effect.map(Number))
      const first = yield* leaseOf
      // Renewals move the lease on, past the first one's end.
      yield* leaseOf.pipe(
        Effect.filterOrFail((lu) => lu >= first + 1_000),
        Effect.retry({ times: 200, schedule: Schedule.spaced("20 millis") })
      )
      expect(yield* b.tokens.send("tok-1", ev("alive"))).toBe("delivered")
      expect(yield* c.until(1)).toEqual(["alive"])
      // A node that does not renew (as a dead one): once Redis' clock passes its lease, the token is unknown.
      const d = yield* node(server, { lease: "1 second", positionCheck: false })
      yield* client(d.tokens, "other", "tok-2")
      const deadline = Number(yield* b.redis.send<string>("HGET", "sluice:registry:k:{other}", "lu"))
      yield* b.redis.send<[string, string]>("TIME").pipe(
        Effect.map(([s, us]) => Number(s) * 1000 + Math.floor(Number(us) / 1000)),
        Effect.filterOrFail((now) => now > deadline),
        Effect.retry({ times: 200, schedule: Schedule.spaced("20 millis") })
      )
      const refused = yield* Effect.flip(b.tokens.send("tok-2", ev("to the dead")))
      expect(refused._tag).toBe("UnknownTokenError")
      expect(yield* b.tokens.send("tok-1", ev("still alive"))).toBe("delivered")
    }).pipe(Effect.scoped))
})
