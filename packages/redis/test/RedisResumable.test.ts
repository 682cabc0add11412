// The coordinator seam's promises on a real redis-server: one claim, one
// end, leases on Redis' clock, notifications across connections, bounded
// life, deadlines.
import { describe, expect, it } from "@effect/vitest"
import type { ResumableCoordinator } from "@sluice/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import * as Schedule from "effect/Schedule"
import * as RedisResumable from "../src/RedisResumable.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"
import { connect } from "./support.ts"

const request = (owner: string, overrides: Partial<ResumableCoordinator.ClaimRequest> = {}) => ({
  owner,
  record: `rec-${owner}`,
  leaseMillis: 5_000,
  ttlMillis: 60_000,
  detachMillis: undefined,
  retentionMillis: 30_000,
  bounds: { maxEvents: 100, maxBytes: 10_000, maxAgeMillis: Number.POSITIVE_INFINITY },
  ...overrides
})

/** A node: its own connection and coordinator. */
const node = (server: RedisServer.RedisServer, options: RedisResumable.Options = {}) =>
  Effect.gen(function*() {
    const redis = yield* connect(server)
    const coordinator = yield* RedisResumable.make({ address: server.url, ping: "200 millis", ...options }).pipe(
      Effect.provideService(Redis.Redis, redis)
    )
    return { redis, coordinator }
  })

/** Polls `get` (bounded) until `predicate` holds: waiting for Redis' own clock. */
const until = (
  coordinator: ResumableCoordinator.Coordinator["Service"],
  id: string,
  predicate: (state: ResumableCoordinator.State | undefined) => boolean
) =>
  coordinator.get(id).pipe(
    Effect.filterOrFail(predicate),
    Effect.retry({ times: 200, schedule: Schedule.spaced("20 millis") })
  )

describe("RedisResumable on a real redis-server", () => {
  it.live("of 30 concurrent claims from three nodes exactly one wins; the others see its state", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const nodes = yield* Effect.all([node(server), node(server), node(server)])
      const claims = yield* Effect.all(
        Array.from({ length: 30 }, (_, i) => nodes[i % 3]!.coordinator.claim("s", request(`n${i}`))),
        { concurrency: "unbounded" }
      )
      const won = claims.filter((c) => c._tag === "Claimed")
      expect(won).toHaveLength(1)
      const winner = won[0]!.state as ResumableCoordinator.Running
      for (const c of claims) {
        expect(c.state).toMatchObject({ _tag: "Running", owner: winner.owner, record: winner.record })
      }
      expect(winner).toMatchObject({ id: "s", leaseExpired: false, stopRequested: undefined, retentionMillis: 30_000 })
      expect(winner.bounds.maxAgeMillis).toBe(Number.POSITIVE_INFINITY)
    }))

  it.live("the end is decided once: of concurrent finishes one wins, the others are refused with its end", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const [a, b] = yield* Effect.all([node(server), node(server)])
      yield* a.coordinator.claim("s", request("a", { leaseMillis: 150 }))
      yield* until(b.coordinator, "s", (s) => s?._tag === "Running" && s.leaseExpired)
      const finishes = yield* Effect.all([
        a.coordinator.finish("s", { end: { _tag: "Completed" }, retentionMillis: 30_000, owner: "a" }),
        b.coordinator.finish("s", { end: { _tag: "ProducerLost" }, retentionMillis: 30_000 }),
        b.coordinator.finish("s", { end: { _tag: "Expired" }, retentionMillis: 30_000 })
      ], { concurrency: "unbounded" })
      const finished = finishes.filter((f) => f._tag === "Finished")
      expect(finished).toHaveLength(1)
      const end = (finished[0]!.state as ResumableCoordinator.Ended).end
      for (const f of finishes) expect(f.state).toMatchObject({ _tag: "Ended", end })
      expect(yield* b.coordinator.get("s")).toMatchObject({ _tag: "Ended", end, record: "rec-a" })
    }))

  it.live("leases run on Redis' clock: another node is refused while it runs; once out, it cannot be renewed", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const [a, b] = yield* Effect.all([node(server), node(server)])
      yield* a.coordinator.claim("s", request("a", { leaseMillis: 300 }))
      expect(yield* b.coordinator.finish("s", { end: { _tag: "ProducerLost" }, retentionMillis: 1_000 })).toMatchObject(
        { _tag: "Refused", state: { _tag: "Running", owner: "a" } }
      )
      expect(yield* b.coordinator.renew("s", "b", 300)).toMatchObject({ _tag: "Lost" })
      expect(yield* a.coordinator.renew("s", "a", 300)).toMatchObject({ _tag: "Renewed" })
      yield* until(b.coordinator, "s", (s) => s?._tag === "Running" && s.leaseExpired)
      expect(yield* a.coordinator.renew("s", "a", 300)).toMatchObject({
        _tag: "Lost",
        state: { _tag: "Running", leaseExpired: true }
      })
      expect(yield* b.coordinator.finish("s", { end: { _tag: "ProducerLost" }, retentionMillis: 1_000 }))
        .toMatchObject({ _tag: "Finished", state: { end: { _tag: "ProducerLost" } } })
    }))

  it.live("a stop request and the end reach a watcher on another connection; removal too", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const [a, b] = yield* Effect.all([node(server), node(server)])
      yield* a.coordinator.claim("s", request("a"))
      const heard: Array<ResumableCoordinator.State | undefined> = []
      const third = yield* Deferred.make<void>()
      yield* a.coordinator.watch("s", (state) => {
        heard.push(state)
        if (heard.length === 3) Deferred.doneUnsafe(third, Effect.void)
      })
      expect(yield* b.coordinator.requestStop("s", "user_cancel")).toMatchObject({ stopRequested: "user_cancel" })
      // A second request changes nothing and says nothing.
      expect(yield* b.coordinator.requestStop("s", "other")).toMatchObject({ stopRequested: "user_cancel" })
      yield* a.coordinator.finish("s", {
        end: { _tag: "Stopped", reason: "user_cancel", detached: false },
        retentionMillis: 30_000,
        owner: "a"
      })
      yield* b.coordinator.remove("s", "another-record")
      yield* b.coordinator.remove("s", "rec-a")
      yield* Deferred.await(third).pipe(Effect.timeout("5 seconds"))
      expect(heard.map((s) => s === undefined ? "removed" : s._tag === "Running" ? `stop:${s.stopRequested}` : s._tag))
        .toEqual(["stop:user_cancel", "Ended", "removed"])
      expect(yield* a.coordinator.get("s")).toBeUndefined()
    }))

  it.live("touch moves the last-seen time on Redis' clock (the detach policy's clients on other nodes)", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const [a, b] = yield* Effect.all([node(server), node(server)])
      yield* a.coordinator.claim("s", request("a", { detachMillis: 1_000 }))
      const idle = yield* until(a.coordinator, "s", (s) => s?._tag === "Running" && s.idleMillis >= 100)
      yield* b.coordinator.touch("s")
      const after = (yield* a.coordinator.get("s")) as ResumableCoordinator.Running
      expect(after.detachMillis).toBe(1_000)
      expect(after.lastSeenAt).toBeGreaterThan((idle as ResumableCoordinator.Running).lastSeenAt)
      expect(after.idleMillis).toBeLessThan(100)
    }))

  it.live("bounded life: the state expires in Redis (ttl while running; lease + retention without a lifetime; retention after the end)", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const { coordinator, redis } = yield* node(server, { prefix: "p" })
      yield* coordinator.claim("ttl", request("a", { ttlMillis: 60_000 }))
      yield* coordinator.claim("forever", request("a", { ttlMillis: Number.POSITIVE_INFINITY, leaseMillis: 2_000 }))
      yield* coordinator.claim("ended", request("a"))
      yield* coordinator.finish("ended", { end: { _tag: "Completed" }, retentionMillis: 7_000, owner: "a" })
      const pttl = (id: string) => redis.send<number>("PTTL", `p:r:{${id}}`)
      expect(yield* pttl("ttl")).toBeGreaterThan(55_000)
      expect(yield* pttl("forever")).toBeGreaterThan(25_000) // lease 2 s + retention 30 s
      expect(yield* pttl("forever")).toBeLessThanOrEqual(32_000)
      expect(yield* pttl("ended")).toBeGreaterThan(5_000)
      expect(yield* pttl("ended")).toBeLessThanOrEqual(7_000)
      yield* coordinator.claim("gone", request("a"))
      yield* coordinator.finish("gone", { end: { _tag: "Completed" }, retentionMillis: 0, owner: "a" })
      expect(yield* coordinator.get("gone")).toBeUndefined()
    }))

  it.live("a Redis that does not answer: every call fails with CoordinatorError within the deadline", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const { coordinator } = yield* node(server, { timeout: "300 millis" })
      yield* coordinator.claim("s", request("a"))
      yield* server.pause
      const started = Date.now()
      const error = yield* Effect.flip(coordinator.renew("s", "a", 1_000))
      expect(Date.now() - started).toBeLessThan(3_000)
      yield* server.resume
      expect(error._tag).toBe("CoordinatorError")
      expect(error.operation).toBe("renew")
      expect(error.message).toContain(server.url)
      expect(error.message).toContain("did not answer within 300 ms")
    }))

  it.live("a Redis that cannot be reached at start: make fails with RedisUnavailableError naming the address", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const redis = yield* connect(server)
      yield* server.kill
      const started = Date.now()
      const error = yield* Effect.flip(
        RedisResumable.make({ address: server.url, timeout: "300 millis" }).pipe(
          Effect.provideService(Redis.Redis, redis)
        )
      )
      expect(error._tag).toBe("RedisUnavailableError")
      expect(error.message).toContain(server.url)
      expect(Date.now() - started).toBeLessThan(5_000)
      // Back before the scope closes: the client's connection is released cleanly.
      yield* server.start
    }))
})
