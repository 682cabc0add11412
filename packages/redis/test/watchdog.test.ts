import { describe, expect, it } from "@effect/vitest"
import { Log } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as RedisLog from "../src/RedisLog.ts"
import * as RedisRegistry from "../src/RedisRegistry.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"
import { connect } from "./support.ts"

/**
 * A Redis service over a real one whose Pub/Sub subscriptions can go deaf:
 * still open, nothing delivered (what a subscription left on an old primary
 * looks like after a failover, while every health check stays green).
 */
const deafening = (real: Redis.Redis["Service"]) =>
  Effect.gen(function*() {
    const state = { subscriptions: 0, deaf: new Set<number>() }
    const redis = yield* Redis.make({
      send: real.send,
      subscribe: (channel, onMessage) =>
        Effect.gen(function*() {
          const n = ++state.subscriptions
          const queue = yield* real.subscribe(channel)
          yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(queue), (m) =>
            Effect.sync(() => {
              if (!state.deaf.has(n)) onMessage(m)
            }))))
          return Effect.never
        }),
      connect: Effect.die("no reserved connections here")
    })
    return { redis, state }
  })

describe("a subscription that silently stopped delivering", () => {
  it.live("is noticed by its ping, re-established, and the node catches up from the stream", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const real = yield* connect(server)
      const { redis, state } = yield* deafening(real)
      // Position checks off: only the ping can notice.
      const deaf = yield* RedisLog.make({ address: server.url, ping: "100 millis", positionCheck: false }).pipe(
        Effect.provideService(Redis.Redis, redis)
      )
      const other = yield* RedisLog.make({ address: server.url }).pipe(Effect.provideService(Redis.Redis, real))
      const log = yield* deaf.open("t")
      const publisher = yield* other.open("t")
      const seen = yield* Queue.unbounded<string>()
      log.listen((change) => {
        if (change._tag === "Appended") {
          for (const f of change.frames) Queue.offerUnsafe(seen, new TextDecoder().decode(f))
        }
      })
      yield* publisher.append([{ fields: "data: heard\n\n", id: undefined }])
      expect(yield* Queue.take(seen)).toContain("data: heard")
      expect(state.subscriptions).toBe(1)

      state.deaf.add(1)
      yield* publisher.append([{ fields: "data: missed\n\n", id: undefined }])
      expect(yield* Queue.take(seen).pipe(Effect.timeout("10 seconds"))).toContain("data: missed")
      expect(state.subscriptions).toBe(2)
      yield* publisher.append([{ fields: "data: live again\n\n", id: undefined }])
      expect(yield* Queue.take(seen).pipe(Effect.timeout("10 seconds"))).toContain("data: live again")
    }).pipe(Effect.scoped))

  it.live("without pings, the position check alone catches up", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const real = yield* connect(server)
      const { redis, state } = yield* deafening(real)
      const deaf = yield* RedisLog.make({ address: server.url, ping: "1 hour", positionCheck: "50 millis" }).pipe(
        Effect.provideService(Redis.Redis, redis)
      )
      const other = yield* RedisLog.make({ address: server.url }).pipe(Effect.provideService(Redis.Redis, real))
      const log = yield* deaf.open("t")
      const publisher = yield* other.open("t")
      const seen = yield* Queue.unbounded<Log.Change>()
      log.listen((change) => Queue.offerUnsafe(seen, change))
      state.deaf.add(1)
      yield* publisher.append([{ fields: "data: 1\n\n", id: undefined }, { fields: "data: 2\n\n", id: undefined }])
      const change = yield* Queue.take(seen).pipe(Effect.timeout("10 seconds"))
      expect(change._tag === "Appended" && [change.firstSeq, change.frames.length]).toEqual([1, 2])
      expect(state.subscriptions).toBe(1)
    }).pipe(Effect.scoped))
})

describe("a subscription that cannot be made at start", () => {
  it.live("fails RedisLog.make and RedisRegistry.make with RedisUnavailableError naming the address", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const real = yield* connect(server)
      // Commands work, subscriptions never come.
      const redis = yield* Redis.make({
        send: real.send,
        subscribe: () => Effect.fail(new Redis.RedisError({ cause: new Error("subscriptions refused") })),
        connect: Effect.die("no reserved connections here")
      })
      const log = yield* Effect.flip(
        RedisLog.make({ address: server.url, timeout: "300 millis" }).pipe(Effect.provideService(Redis.Redis, redis))
      )
      expect(log._tag).toBe("RedisUnavailableError")
      expect(log.message).toBe(
        `Redis at ${server.url} is unavailable (subscribe to sluice:log): no subscription within 300 ms`
      )
      const registry = yield* Effect.flip(
        RedisRegistry.make({ address: server.url, timeout: "300 millis" }).pipe(
          Effect.provideService(Redis.Redis, redis)
        )
      )
      expect(registry.message).toContain(`Redis at ${server.url} is unavailable (subscribe to sluice:registry:n:`)
    }).pipe(Effect.scoped))
})
