// The Redis log across real processes: three nodes of tests/redis/app.ts on
// one redis-server (started by the test, no persistence). Clients are
// sluice's SseClient and the eventsource npm client; publishers are HTTP
// posts to different nodes.
import { describe, expect, it } from "@effect/vitest"
import { RedisServer } from "@sluice/redis/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as AppProcess from "./AppProcess.ts"
import * as Balancer from "./Balancer.ts"
import { type Collector, eventSourceClient, post, sluiceClient } from "./support.ts"

const nodes = (url: string, names: ReadonlyArray<string>) =>
  Effect.all(names.map((name) => AppProcess.start(name, url)), { concurrency: "unbounded" })

const seqOf = (id: string) => Number(id.slice(id.lastIndexOf("-") + 1))

/** Every `n` event once, in one order: data and ids equal to the reference, ids contiguous. */
const expectSame = (clients: ReadonlyArray<Collector>, total: number) => {
  const reference = clients[0]!.events.filter((e) => e.event === "n")
  expect(reference).toHaveLength(total)
  expect(reference.map((e) => seqOf(e.id))).toEqual(Array.from({ length: total }, (_, i) => i + 1))
  expect(new Set(reference.map((e) => e.data)).size).toBe(total)
  for (const c of clients) {
    expect(c.events.filter((e) => e.event === "n").map((e) => `${e.id} ${e.data}`)).toEqual(
      reference.map((e) => `${e.id} ${e.data}`)
    )
  }
}

describe("the Redis log across three processes", () => {
  it.live(
    "30 clients on 3 nodes, 3 publishers on different nodes, 3 000 events: every client gets every event once, in the same order",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b, c] = yield* nodes(redis.url, ["a", "b", "c"])
        const apps = [a!, b!, c!]
        const clients = yield* Effect.all(
          Array.from({ length: 30 }, (_, i) => sluiceClient(`${apps[i % 3]!.url}/events`, 3_000)),
          { concurrency: "unbounded" }
        )
        yield* Effect.all(clients.map((client) => client.opened), { concurrency: "unbounded" })
        // Each publisher: 1 000 events to its own node, 20 per request.
        const publisher = (p: number) =>
          Effect.forEach(Array.from({ length: 50 }, (_, r) => r), (r) =>
            Effect.flatMap(
              post(`${apps[p]!.url}/publish`, {
                events: Array.from({ length: 20 }, (_, k) => ({ event: "n", data: `p${p}-${r * 20 + k}` }))
              }),
              (answer) => Effect.sync(() => expect(answer.status).toBe(200))
            ))
        yield* Effect.all([publisher(0), publisher(1), publisher(2)], { concurrency: "unbounded" })
        yield* Effect.all(clients.map((client) => client.done), { concurrency: "unbounded" }).pipe(
          Effect.timeout("60 seconds")
        )
        expectSame(clients, 3_000)
        // Each publisher's events in the order it published them.
        const order = clients[0]!.data()
        for (const p of [0, 1, 2]) {
          expect(order.filter((d) => d.startsWith(`p${p}-`))).toEqual(
            Array.from({ length: 1_000 }, (_, k) => `p${p}-${k}`)
          )
        }
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "kill -9 a node mid-stream: its clients (SseClient and eventsource) resume on another node with Last-Event-ID, no gap, no duplicate",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b, c] = yield* nodes(redis.url, ["a", "b", "c"])
        const balancer = yield* Balancer.make([a!.port, b!.port, c!.port])
        const url = `http://127.0.0.1:${balancer.port}/events`
        const total = 600
        const clients = yield* Effect.all(
          Array.from({ length: 12 }, (_, i) => i % 2 === 0 ? sluiceClient(url, total) : eventSourceClient(url, total)),
          { concurrency: 1 }
        )
        yield* Effect.all(clients.map((client) => client.opened), { concurrency: "unbounded" })
        const onA = balancer.assigned().filter((port) => port === a!.port).length
        expect(onA).toBeGreaterThan(0)
        // Publishes go to node c, which stays; node a is killed half way.
        for (let r = 0; r < total / 10; r++) {
          if (r === total / 20) yield* a!.kill
          const answer = yield* post(`${c!.url}/publish`, {
            events: Array.from({ length: 10 }, (_, k) => ({ event: "n", data: String(r * 10 + k + 1) }))
          })
          expect(answer.status).toBe(200)
        }
        yield* Effect.all(clients.map((client) => client.done), { concurrency: "unbounded" }).pipe(
          Effect.timeout("60 seconds")
        )
        const expected = Array.from({ length: total }, (_, i) => String(i + 1))
        for (const client of clients) expect(client.data()).toEqual(expected)
        // The clients that were on a reconnected (through the balancer, to b or c).
        expect(balancer.assigned().length).toBeGreaterThanOrEqual(12 + onA)
        expect(clients.filter((client) => client.opens() > 1).length).toBeGreaterThanOrEqual(onA)
        expect(a!.alive()).toBe(false)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "SIGSTOP Redis while publishing, then SIGCONT: each publish failed with a typed error or was delivered; nodes catch up by themselves",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b] = yield* nodes(redis.url, ["a", "b"])
        const client = yield* sluiceClient(`${b!.url}/events`, 1)
        yield* client.opened
        const accepted: Array<string> = []
        const refused: Array<string> = []
        const twoRefused = yield* Deferred.make<void>()
        const paused = yield* Deferred.make<void>()
        const publisher = Effect.forEach(Array.from({ length: 200 }, (_, i) => String(i + 1)), (data) =>
          Effect.gen(function*() {
            if (data === "60") {
              yield* redis.pause
              yield* Deferred.succeed(paused, undefined)
            }
            const answer = yield* post(`${a!.url}/publish`, { events: [{ event: "n", data }] })
            if (answer.status === 200) {
              accepted.push(data)
            } else {
              // Only the typed failure is allowed: Redis did not answer.
              expect(answer).toMatchObject({ status: 503, body: { error: "LogError" } })
              expect(String(answer.body["message"])).toContain(redis.url)
              refused.push(data)
              if (refused.length === 2) {
                yield* Deferred.succeed(twoRefused, undefined)
              }
            }
          }))
        const resumer = Effect.gen(function*() {
          yield* Deferred.await(paused)
          yield* Deferred.await(twoRefused)
          yield* redis.resume
        })
        yield* Effect.all([publisher, resumer], { concurrency: "unbounded" })
        expect(refused.length).toBeGreaterThanOrEqual(2)
        expect(accepted.length).toBeGreaterThan(100)
        // Every accepted publish arrives (refused ones may, as their error says); once each, in order.
        const last = accepted[accepted.length - 1]!
        yield* client.until((e) =>
          e.event === "n" && e.data === last
        ).pipe(Effect.timeout("30 seconds"))
        const got = client.data()
        expect(new Set(got).size).toBe(got.length)
        expect(got.map(Number)).toEqual(
          got.map(Number).toSorted((x, y) => x - y)
        )
        for (const data of accepted) expect(got).toContain(data)
        for (const data of got) expect(accepted.includes(data) || refused.includes(data)).toBe(true)
        // The client stayed connected through the outage (heartbeats), never reconnected.
        expect(client.opens()).toBe(1)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "Redis restarted empty: a resuming client gets replay_gap with the new epoch, then the new events",
    () =>
      Effect.gen(function*() {
        const redis = yield* RedisServer.make()
        const [a, b] = yield* nodes(redis.url, ["a", "b"])
        const first = yield* post(`${a!.url}/publish`, { events: [{ event: "n", data: "old" }] })
        const oldId = (first.body["ids"] as Array<string>)[0]!
        yield* redis.restart
        const publish = (data: string) =>
          post(`${a!.url}/publish`, { events: [{ event: "n", data }] }).pipe(
            Effect.filterOrFail((answer) => answer.status === 200),
            Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") }),
            Effect.map((answer) => (answer.body["ids"] as Array<string>)[0]!)
          )
        const afterId = yield* publish("after the restart")
        // Node b's own connection may still be coming back: a 503 (with Retry-After) is retried.
        const resumed = yield* sluiceClient(`${b!.url}/events`, 1, { lastEventId: oldId, retryStatus: true })
        // A wait that fails says what the client saw.
        const saw = (what: string) => () =>
          Effect.die(new Error(`no ${what} within 20 s; the client saw ${JSON.stringify(resumed.events)}`))
        yield* resumed.until((e) => e.event === "replay_gap").pipe(
          Effect.timeoutOrElse({ duration: "20 seconds", orElse: saw("replay_gap") })
        )
        // Then live events (the hub replays nothing after a gap by default),
        // from where the gap's id says the client stands.
        const liveId = yield* publish("live")
        yield* resumed.until((e) => e.event === "n" && e.data === "live").pipe(
          Effect.timeoutOrElse({ duration: "20 seconds", orElse: saw("live event") })
        )
        const [open, ...rest] = resumed.events
        expect(open!.event).toBe("connection_open")
        const newEpoch = afterId.slice(0, afterId.lastIndexOf("-"))
        expect(newEpoch).not.toBe(oldId.slice(0, oldId.lastIndexOf("-")))
        // Gap signals first (two when node b had not yet seen the new epoch: the replay's,
        // where the client stood, then the node's own when it learned of the restart),
        // the last one in the new epoch; then every event after it, once, in order.
        const lastGap = rest.findLastIndex((e) => e.event === "replay_gap")
        expect(rest.slice(0, lastGap + 1).every((e) => e.event === "replay_gap")).toBe(true)
        for (const gap of rest.slice(0, lastGap + 1)) {
          expect(JSON.parse(gap.data)).toEqual({ reason: "restarted", lastEventId: oldId })
        }
        const at = rest[lastGap]!.id
        expect(at.startsWith(`${newEpoch}-`)).toBe(true)
        const events = [
          { id: afterId, event: "n", data: "after the restart" },
          { id: liveId, event: "n", data: "live" }
        ]
        expect(rest.slice(lastGap + 1)).toEqual(events.filter((e) => seqOf(e.id) > seqOf(at)))
      }).pipe(Effect.scoped),
    120_000
  )

  it.live("a refused publish touches neither Redis nor any node", () =>
    Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      const [a, b] = yield* nodes(redis.url, ["a", "b"])
      const client = yield* sluiceClient(`${b!.url}/events`, 1)
      yield* client.opened
      const tooLarge = yield* post(`${a!.url}/publish`, { events: [{ event: "n", data: "x".repeat(10_000) }] })
      const notAllowed = yield* post(`${a!.url}/publish`, { events: [{ event: "secret", data: "y" }] })
      expect([tooLarge.status, tooLarge.body["error"]]).toEqual([400, "PayloadTooLargeError"])
      expect([notAllowed.status, notAllowed.body["error"]]).toEqual([400, "EventNotAllowedError"])
      const ok = yield* post(`${a!.url}/publish`, { events: [{ event: "n", data: "fine" }] })
      yield* client.done.pipe(Effect.timeout("20 seconds"))
      // The first event anyone saw, and the first the record holds, is the accepted one.
      expect(client.events.filter((e) => e.event !== "connection_open")).toEqual([
        { id: (ok.body["ids"] as Array<string>)[0], event: "n", data: "fine" }
      ])
      expect(seqOf((ok.body["ids"] as Array<string>)[0]!)).toBe(1)
    }).pipe(Effect.scoped), 60_000)
})
