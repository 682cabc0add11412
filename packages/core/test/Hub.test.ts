import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect, Exit, Fiber, Latch, Metric, Scheduler, Schema } from "effect"
import { Hub, SseEvent } from "../src/index.ts"
import { LeakTracker, SeededScheduler, TestSink, TestTime } from "../src/testing.ts"
import { frameSink, range } from "./support/frames.ts"

afterEach(() => {
  vi.restoreAllMocks()
})

describe("Hub: publishing", () => {
  it.effect("(1) every subscriber is handed the single encoding: one UTF-8 encode, the same buffer everywhere", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const sinks = range(1, 5).map(() => frameSink())
      for (const s of sinks) yield* Hub.subscribe(hub, { sink: s.sink })
      // On Node the encoder is Buffer.from (TextEncoder elsewhere): count UTF-8 encodes of strings.
      const encode = vi.spyOn(Buffer, "from")
      yield* Hub.publish(hub, { event: "price", data: JSON.stringify({ p: 1 }) })
      for (const s of sinks) yield* s.awaitEvents(1)
      expect(encode.mock.calls.filter((args) => typeof args[0] === "string")).toHaveLength(1)
      encode.mockRestore()
      const first = sinks[0]!.chunks()[0]!
      for (const s of sinks) expect(s.chunks()).toEqual([first])
      // Not equal copies: the very same object was handed to every sink.
      for (const s of sinks) expect(s.chunks()[0]).toBe(first)
      expect(new TextDecoder().decode(first)).toBe("id: e-1\nevent: price\ndata: {\"p\":1}\n\n")
    }))

  it.effect("(2) mutating the published object afterwards changes nothing any subscriber receives", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const s = frameSink()
      yield* Hub.subscribe(hub, { sink: s.sink })
      const payload = { user: "ada", tags: ["a"] }
      yield* Hub.publishJson(hub, payload, { event: "profile" })
      payload.user = "mallory"
      payload.tags.push("b")
      const input = { event: "note", data: "original" }
      yield* Hub.publish(hub, input)
      input.data = "changed"
      input.event = "other"
      yield* s.awaitEvents(2)
      expect(s.events()).toEqual([
        { id: "e-1", event: "profile", data: "{\"user\":\"ada\",\"tags\":[\"a\"]}" },
        { id: "e-2", event: "note", data: "original" }
      ])
    }))

  it.effect("(3) five subscribers receive identical payloads", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make()
      const sinks = range(1, 5).map(() => frameSink())
      for (const s of sinks) yield* Hub.subscribe(hub, { sink: s.sink })
      for (const i of range(1, 20)) yield* Hub.publishJson(hub, { i, text: "multi\nline" })
      for (const s of sinks) yield* s.awaitEvents(20)
      const texts = sinks.map((s) => s.text())
      expect(new Set(texts).size).toBe(1)
      expect(sinks[0]!.events().map((e) => JSON.parse(e.data!).i)).toEqual(range(1, 20))
    }))

  it.effect("(4) ten concurrent publishers: no lost events, one order for everyone, every frame valid", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: false })
      const sinks = range(1, 3).map(() => frameSink())
      for (const s of sinks) yield* Hub.subscribe(hub, { sink: s.sink, capacity: 2_000 })
      yield* Effect.forEach(range(1, 10), (p) =>
        Effect.forEach(range(1, 100), (k) =>
          Effect.andThen(
            Hub.publishJson(hub, { p, k }, { event: `p${p}` }),
            Effect.yieldNow
          ), { discard: true }), { concurrency: "unbounded", discard: true })
      for (const s of sinks) yield* s.awaitEvents(1_000)
      const events = sinks[0]!.events()
      // Ids are the hub's order: 1..1000 without a hole.
      expect(events.map((e) => e.id)).toEqual(range(1, 1_000).map((n) => `e-${n}`))
      // Each publisher's events arrive in its own order, all of them.
      for (const p of range(1, 10)) {
        const mine = events.filter((e) => e.event === `p${p}`).map((e) => JSON.parse(e.data!))
        expect(mine).toEqual(range(1, 100).map((k) => ({ p, k })))
      }
      for (const s of sinks) expect(s.text()).toBe(sinks[0]!.text())
    }))

  it.effect("hub-assigned ids are <epoch>-<seq>, in order; a publisher's own id is kept", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "k3x" })
      const s = frameSink()
      yield* Hub.subscribe(hub, { sink: s.sink })
      const a = yield* Hub.publish(hub, { data: "a" })
      const b = yield* Hub.publish(hub, { data: "b", id: "order-77" })
      const c = yield* Hub.publish(hub, SseEvent.make({ data: "c", retry: 1500 }))
      expect([a, b, c]).toEqual([
        { seq: 1, id: "k3x-1", subscribers: 1 },
        { seq: 2, id: "order-77", subscribers: 1 },
        { seq: 3, id: "k3x-3", subscribers: 1 }
      ])
      yield* s.awaitEvents(3)
      expect(s.text()).toBe("id: k3x-1\ndata: a\n\nid: order-77\ndata: b\n\nid: k3x-3\nretry: 1500\ndata: c\n\n")
      expect(hub.epoch).toBe("k3x")
    }))

  it.effect("epochs differ between hub instances", () =>
    Effect.gen(function*() {
      const a = yield* Hub.make()
      const b = yield* Hub.make()
      expect(a.epoch).toMatch(/^[0-9a-z]{6}$/)
      expect(a.epoch).not.toBe(b.epoch)
    }))

  it.effect("Hub.make rejects an epoch or gap event type the ids and wire cannot carry", () =>
    Effect.gen(function*() {
      expect(yield* Effect.flip(Hub.make({ epoch: "A-1" }))).toMatchObject({ _tag: "InvalidEventError", field: "id" })
      expect(yield* Effect.flip(Hub.make({ gapEvent: "a\nb" }))).toMatchObject({
        _tag: "InvalidEventError",
        field: "event"
      })
    }))
})

describe("Hub: validation happens before anything is enqueued", () => {
  const setup = (options: Hub.Options) =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", ...options })
      const sinks = range(1, 3).map(() => frameSink())
      const subs = yield* Effect.forEach(sinks, (s) => Hub.subscribe(hub, { sink: s.sink }))
      // Untouched: no mailbox holds anything, no history, nothing published.
      const untouched = () => {
        expect(subs.map((s) => s.connection.size())).toEqual([0, 0, 0])
        expect(hub.stats()).toMatchObject({ published: 0, history: { events: 0, bytes: 0 }, lastEventId: undefined })
      }
      return { hub, sinks, subs, untouched }
    })

  it.effect("(6) an event type outside the allowlist is rejected before any mailbox is touched", () =>
    Effect.gen(function*() {
      const { hub, sinks, untouched } = yield* setup({ allowedEvents: ["price", "trade"] })
      expect(yield* Effect.flip(Hub.publish(hub, { event: "admin", data: "x" }))).toMatchObject({
        _tag: "EventNotAllowedError",
        event: "admin"
      })
      // An event without a type is a `message`: not in this allowlist either.
      expect(yield* Effect.flip(Hub.publish(hub, { data: "x" }))).toMatchObject({ event: "message" })
      untouched()
      yield* Hub.publish(hub, { event: "price", data: "1" })
      for (const s of sinks) yield* s.awaitEvents(1)
      expect(sinks[0]!.events()).toEqual([{ id: "e-1", event: "price", data: "1" }])
    }))

  it.effect("a payload over maxEventBytes is rejected: measured exactly, and huge data without encoding it", () =>
    Effect.gen(function*() {
      const { hub, untouched } = yield* setup({ maxEventBytes: 64 })
      const encode = vi.spyOn(TextEncoder.prototype, "encode")
      const huge = yield* Effect.flip(Hub.publish(hub, { data: "x".repeat(1_000_000) }))
      expect(huge).toMatchObject({ _tag: "PayloadTooLargeError", size: 1_000_000, max: 64 })
      expect(encode).not.toHaveBeenCalled()
      // 20 characters of 3 UTF-8 bytes each: short as a string, 60 bytes + fields on the wire.
      const wide = yield* Effect.flip(Hub.publish(hub, { data: "€".repeat(20) }))
      expect(wide).toMatchObject({ _tag: "PayloadTooLargeError", size: "id: e-1\ndata: \n\n".length + 60, max: 64 })
      untouched()
      const ok = yield* Hub.publish(hub, { data: "€".repeat(10) })
      expect(ok).toMatchObject({ seq: 1, id: "e-1", subscribers: 3 })
    }))

  it.effect("data JSON cannot carry (cycles, BigInt, throwing toJSON, undefined) is a typed error", () =>
    Effect.gen(function*() {
      const { hub, untouched } = yield* setup({})
      const cyclic: Record<string, unknown> = { a: 1 }
      cyclic["self"] = cyclic
      const bad: Array<unknown> = [
        cyclic,
        { n: 10n },
        {
          toJSON: () => {
            throw new Error("nope")
          }
        },
        undefined,
        () => 1
      ]
      for (const value of bad) {
        const error = yield* Effect.flip(Hub.publishJson(hub, value))
        expect(error._tag).toBe("UnserializableDataError")
      }
      expect(yield* Effect.flip(Hub.publishJson(hub, { n: 1n }))).toMatchObject({
        reason: expect.stringMatching(/BigInt/)
      })
      untouched()
    }))

  it.effect("invalid ids, event types and text are rejected with the encoder's InvalidEventError", () =>
    Effect.gen(function*() {
      const { hub, untouched } = yield* setup({})
      expect(yield* Effect.flip(Hub.publish(hub, { id: "1\nevent: admin", data: "x" }))).toMatchObject({
        _tag: "InvalidEventError",
        field: "id"
      })
      expect(yield* Effect.flip(Hub.publish(hub, { event: "a\rb", data: "x" }))).toMatchObject({ field: "event" })
      expect(yield* Effect.flip(Hub.publish(hub, { data: "\ud800" }))).toMatchObject({ field: "data" })
      expect(yield* Effect.flip(Hub.publish(hub, { data: "x", retry: -1 }))).toMatchObject({ field: "retry" })
      expect(yield* Effect.flip(Hub.publishJson(hub, { ok: true }, { event: "bad\n" }))).toMatchObject({
        field: "event"
      })
      untouched()
    }))

  it.effect("publishSchema encodes with the schema once; a value it rejects is an UnserializableDataError", () =>
    Effect.gen(function*() {
      const { hub, sinks, untouched } = yield* setup({})
      const Tick = Schema.Struct({ n: Schema.Number.check(Schema.isInt()), at: Schema.Date })
      const bad = yield* Effect.flip(Hub.publishSchema(hub, Tick, { n: 1.5, at: new Date(0) }))
      expect(bad._tag).toBe("UnserializableDataError")
      untouched()
      yield* Hub.publishSchema(hub, Tick, { n: 1, at: new Date(0) }, { event: "tick" })
      yield* sinks[0]!.awaitEvents(1)
      expect(sinks[0]!.events()).toEqual([{
        id: "e-1",
        event: "tick",
        data: "{\"n\":1,\"at\":\"1970-01-01T00:00:00.000Z\"}"
      }])
    }))
})

describe("Hub: subscribers and slow-client policies", () => {
  it.effect("(5) a subscriber whose mailbox is full under `disconnect` is removed; a healthy one receives the event", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const hub = yield* Hub.make({ epoch: "e" })
      const stuck = yield* TestSink.make({ hangAfter: 0 })
      const healthy = frameSink()
      const [slow, fast] = yield* tracker.track(Effect.all([
        Hub.subscribe(hub, { sink: stuck.sink, capacity: 2, id: "slow", writeTimeout: false }),
        Hub.subscribe(hub, { sink: healthy.sink, capacity: 16, id: "fast" })
      ]))
      yield* Hub.publish(hub, { data: "1" })
      yield* stuck.awaitFault // the slow writer holds event 1 in a write that never ends
      yield* healthy.awaitEvents(1)
      yield* Hub.publish(hub, { data: "2" })
      yield* Hub.publish(hub, { data: "3" }) // slow's mailbox: [2, 3], full
      expect(hub.subscriberCount()).toBe(2)
      const fourth = yield* Hub.publish(hub, { data: "4" })
      expect(fourth.subscribers).toBe(2) // published to both; handed out at the end of this run
      yield* Effect.yieldNow
      expect(hub.subscriberCount()).toBe(1)
      const outcome = yield* slow.outcome
      expect(outcome).toMatchObject({ _tag: "SlowConsumer", delivered: 0, discarded: 3 })
      if (outcome._tag === "SlowConsumer") {
        expect(outcome.error).toBeInstanceOf(Hub.SlowConsumerError)
        expect(outcome.error).toMatchObject({
          _tag: "SlowConsumerError",
          subscriber: "slow",
          strategy: "disconnect",
          capacity: 2
        })
      }
      yield* healthy.awaitEvents(4)
      expect(healthy.events().map((e) => e.data)).toEqual(["1", "2", "3", "4"])
      expect(fast.connection.isOpen()).toBe(true)
      yield* fast.connection.close("done")
      yield* fast.outcome
      yield* tracker.assertNoLeaks()
    }))

  const policyRun = (policy: Hub.Strategy) =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const hold = yield* Latch.make(false)
      const stuckSink = frameSink({ hold })
      const fastSinks = range(1, 3).map(() => frameSink())
      const stuck = yield* Hub.subscribe(hub, {
        sink: stuckSink.sink,
        strategy: policy,
        capacity: 4,
        dropNotice: true,
        suspendTimeout: "10 seconds",
        writeTimeout: false,
        heartbeat: false
      })
      const fast = yield* Effect.forEach(fastSinks, (s) =>
        Hub.subscribe(hub, { sink: s.sink, strategy: policy, capacity: 4 }))
      // Paced like a real feed: the fast writers keep up, the stuck one does not.
      const publisher = yield* Effect.forkChild(Effect.forEach(range(1, 20), (i) =>
        Effect.andThen(
          Hub.publish(hub, { data: String(i) }),
          TestTime.settle(5)
        ), { discard: true }))
      return { hub, hold, stuck, stuckSink, fast, fastSinks, publisher }
    })

  it.effect("(8) sliding with one stuck subscriber: fast ones unaffected; the stuck one keeps the newest, drops counted", () =>
    Effect.gen(function*() {
      const { fastSinks, hold, publisher, stuck, stuckSink } = yield* policyRun("sliding")
      yield* Fiber.join(publisher)
      for (const s of fastSinks) yield* s.awaitEvents(20)
      for (const s of fastSinks) expect(s.events().map((e) => e.data)).toEqual(range(1, 20).map(String))
      // Event 1 is in the stuck write; 17, 18, 19, 20 in the mailbox; 2..16 were pushed out.
      expect(stuck.connection.stats().dropped).toBe(15)
      yield* hold.open
      yield* stuckSink.awaitEvents(6)
      expect(stuckSink.events()).toEqual([
        { id: "e-1", data: "1" },
        { event: "events_dropped", data: "{\"missed\":15}" },
        ...range(17, 20).map((i) => ({ id: `e-${i}`, data: String(i) }))
      ])
      expect(stuck.connection.isOpen()).toBe(true)
    }))

  it.effect("(8) dropping with one stuck subscriber: fast ones unaffected; the stuck one keeps the oldest, drops counted", () =>
    Effect.gen(function*() {
      const { fastSinks, hold, publisher, stuck, stuckSink } = yield* policyRun("dropping")
      yield* Fiber.join(publisher)
      for (const s of fastSinks) yield* s.awaitEvents(20)
      for (const s of fastSinks) expect(s.events().map((e) => e.data)).toEqual(range(1, 20).map(String))
      expect(stuck.connection.stats().dropped).toBe(15)
      yield* hold.open
      yield* stuckSink.awaitEvents(6)
      expect(stuckSink.events()).toEqual([
        ...range(1, 5).map((i) => ({ id: `e-${i}`, data: String(i) })),
        { event: "events_dropped", data: "{\"missed\":15}" }
      ])
    }))

  it.effect("(8) disconnect with one stuck subscriber: it is removed with SlowConsumer; fast ones unaffected", () =>
    Effect.gen(function*() {
      const { fastSinks, hub, publisher, stuck } = yield* policyRun("disconnect")
      yield* Fiber.join(publisher)
      for (const s of fastSinks) yield* s.awaitEvents(20)
      for (const s of fastSinks) expect(s.events().map((e) => e.data)).toEqual(range(1, 20).map(String))
      const outcome = yield* stuck.outcome
      expect(outcome).toMatchObject({
        _tag: "SlowConsumer",
        error: { strategy: "disconnect" },
        delivered: 0,
        discarded: 5
      })
      expect(hub.subscriberCount()).toBe(3)
    }))

  it.effect("(8) suspend with one stuck subscriber: the publisher waits exactly its timeout, then it is disconnected", () =>
    Effect.gen(function*() {
      const { fastSinks, hub, publisher, stuck } = yield* policyRun("suspend")
      yield* TestTime.settle(200)
      // 1 in the stuck write, 2..5 in its mailbox, 6 waiting for room: the publisher is held.
      expect(publisher.pollUnsafe()).toBeUndefined()
      for (const s of fastSinks) expect(s.events().map((e) => e.data)).toEqual(range(1, 6).map(String))
      yield* TestTime.advance("9999 millis", "1 second")
      expect(publisher.pollUnsafe()).toBeUndefined()
      yield* TestTime.advance("1 millis")
      const outcome = yield* stuck.outcome
      expect(outcome).toMatchObject({
        _tag: "SlowConsumer",
        error: { _tag: "SlowConsumerError", strategy: "suspend", waitedMillis: 10_000 },
        discarded: 5
      })
      yield* Fiber.join(publisher)
      for (const s of fastSinks) yield* s.awaitEvents(20)
      for (const s of fastSinks) expect(s.events().map((e) => e.data)).toEqual(range(1, 20).map(String))
      expect(hub.subscriberCount()).toBe(3)
    }))

  it.effect("suspend: a subscriber that makes room in time gets everything, in order, and stays", () =>
    Effect.gen(function*() {
      const { fastSinks, hold, publisher, stuck, stuckSink } = yield* policyRun("suspend")
      yield* TestTime.advance("3 seconds", "1 second")
      expect(publisher.pollUnsafe()).toBeUndefined()
      yield* hold.open
      yield* Fiber.join(publisher)
      yield* stuckSink.awaitEvents(20)
      expect(stuckSink.events().map((e) => e.data)).toEqual(range(1, 20).map(String))
      for (const s of fastSinks) expect(s.events().map((e) => e.data)).toEqual(range(1, 20).map(String))
      expect(stuck.connection.isOpen()).toBe(true)
    }))

  it.effect("suspend: concurrent publishers wait behind the held one, so nobody sees events reordered", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const hold = yield* Latch.make(false)
      const slowSink = frameSink({ hold })
      const fastSink = frameSink()
      const slow = yield* Hub.subscribe(hub, {
        sink: slowSink.sink,
        strategy: "suspend",
        capacity: 1,
        writeTimeout: false
      })
      yield* Hub.subscribe(hub, { sink: fastSink.sink, strategy: "dropping", capacity: 100 })
      yield* Hub.publish(hub, { data: "a1" }) // into the slow write
      yield* TestTime.settle()
      yield* Hub.publish(hub, { data: "a2" }) // fills the slow mailbox
      const a3 = yield* Effect.forkChild(Hub.publish(hub, { data: "a3" })) // must wait
      yield* TestTime.settle()
      const others = yield* Effect.forEach(["b1", "c1", "b2"], (data) => Effect.forkChild(Hub.publish(hub, { data })))
      yield* TestTime.settle()
      expect(a3.pollUnsafe()).toBeUndefined()
      for (const f of others) expect(f.pollUnsafe()).toBeUndefined()
      expect(fastSink.events().map((e) => e.data)).toEqual(["a1", "a2", "a3"])
      yield* hold.open
      yield* Fiber.join(a3)
      yield* Fiber.joinAll(others)
      yield* slowSink.awaitEvents(6)
      yield* fastSink.awaitEvents(6)
      const order = ["a1", "a2", "a3", "b1", "c1", "b2"]
      expect(slowSink.events().map((e) => e.data)).toEqual(order)
      expect(fastSink.events().map((e) => e.data)).toEqual(order)
      expect(slowSink.ids()).toEqual(range(1, 6).map((i) => `e-${i}`))
      expect(slow.connection.isOpen()).toBe(true)
    }))

  it.effect("suspend: interrupting a waiting publisher releases the others and disconnects the subscriber it owed", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const stuck = yield* TestSink.make({ hangAfter: 0 })
      const fast = frameSink()
      const slow = yield* Hub.subscribe(hub, {
        sink: stuck.sink,
        strategy: "suspend",
        capacity: 1,
        suspendTimeout: "1 hour",
        writeTimeout: false
      })
      yield* Hub.subscribe(hub, { sink: fast.sink })
      yield* Hub.publish(hub, { data: "1" })
      yield* stuck.awaitFault
      yield* Hub.publish(hub, { data: "2" })
      const waiting = yield* Effect.forkChild(Hub.publish(hub, { data: "3" }))
      const queued = yield* Effect.forkChild(Hub.publish(hub, { data: "4" }))
      yield* TestTime.settle()
      expect(queued.pollUnsafe()).toBeUndefined()
      yield* Fiber.interrupt(waiting)
      // Subscriber `slow` would have missed event 3: it is ended, not left with a silent gap.
      expect(yield* slow.outcome).toMatchObject({ _tag: "SlowConsumer", error: { strategy: "suspend" } })
      expect(yield* Fiber.join(queued)).toMatchObject({ seq: 4, subscribers: 1 })
      yield* fast.awaitEvents(4)
      expect(fast.events().map((e) => e.data)).toEqual(["1", "2", "3", "4"])
    }))

  it.effect("a waiting publisher that is interrupted while queued leaves the gate to the next one", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const hold = yield* Latch.make(false)
      const slowSink = frameSink({ hold })
      yield* Hub.subscribe(hub, { sink: slowSink.sink, strategy: "suspend", capacity: 1, writeTimeout: false })
      yield* Hub.publish(hub, { data: "1" })
      yield* TestTime.settle()
      yield* Hub.publish(hub, { data: "2" })
      const holder = yield* Effect.forkChild(Hub.publish(hub, { data: "3" }))
      yield* TestTime.settle()
      const dropped = yield* Effect.forkChild(Hub.publish(hub, { data: "never" }))
      const next = yield* Effect.forkChild(Hub.publish(hub, { data: "4" }))
      yield* TestTime.settle()
      yield* Fiber.interrupt(dropped)
      yield* hold.open
      yield* Fiber.join(holder)
      yield* Fiber.join(next)
      yield* slowSink.awaitEvents(4)
      expect(slowSink.events().map((e) => e.data)).toEqual(["1", "2", "3", "4"])
      expect(hub.stats().published).toBe(4)
    }))

  it.effect("heartbeats of fast subscribers are not delayed while a publisher waits for a stuck one", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const stuck = yield* TestSink.make({ hangAfter: 0 })
      const fast = frameSink()
      yield* Hub.subscribe(hub, {
        sink: stuck.sink,
        strategy: "suspend",
        capacity: 1,
        suspendTimeout: "1 minute",
        writeTimeout: false
      })
      yield* Hub.subscribe(hub, { sink: fast.sink, heartbeat: "15 seconds", heartbeatText: "hb" })
      yield* Hub.publish(hub, { data: "1" })
      yield* stuck.awaitFault
      yield* Hub.publish(hub, { data: "2" })
      const held = yield* Effect.forkChild(Hub.publish(hub, { data: "3" }))
      yield* TestTime.advance("46 seconds", "1 second")
      expect(held.pollUnsafe()).toBeUndefined()
      expect(fast.frames()).toEqual([
        { id: "e-1", data: "1" },
        { id: "e-2", data: "2" },
        { id: "e-3", data: "3" },
        { comment: "hb" },
        { comment: "hb" },
        { comment: "hb" }
      ])
      yield* Fiber.interrupt(held)
    }))

  it.effect("dropping notice through the hub; notices are per subscriber, fast ones never see one", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const hold = yield* Latch.make(false)
      const slowSink = frameSink({ hold })
      const fastSink = frameSink()
      yield* Hub.subscribe(hub, {
        sink: slowSink.sink,
        strategy: "dropping",
        capacity: 2,
        dropNotice: (missed) => SseEvent.make({ event: "lag", data: `missed ${missed}` })
      })
      yield* Hub.subscribe(hub, { sink: fastSink.sink, strategy: "dropping", capacity: 2, dropNotice: true })
      for (const i of range(1, 6)) {
        yield* Hub.publish(hub, { data: String(i) })
        yield* TestTime.settle(5)
      }
      yield* hold.open
      yield* slowSink.awaitEvents(4)
      yield* Hub.publish(hub, { data: "7" })
      yield* slowSink.awaitEvents(5)
      // 1 was in the write; 2, 3 waited; 4, 5, 6 were dropped.
      expect(slowSink.events().map((e) => e.event === "lag" ? e.data : e.id)).toEqual([
        "e-1",
        "e-2",
        "e-3",
        "missed 3",
        "e-7"
      ])
      yield* fastSink.awaitEvents(7)
      expect(fastSink.events().map((e) => e.data)).toEqual(range(1, 7).map(String))
    }))

  const churn = Effect.gen(function*() {
    const tracker = LeakTracker.make()
    const hub = yield* Hub.make({ epoch: "e", history: false })
    const seen: Array<ReadonlyArray<string | undefined>> = []
    const control = { stop: false }
    const publisher = yield* Effect.forkChild(Effect.gen(function*() {
      for (let i = 1; i <= 5_000 && !control.stop; i++) {
        yield* Hub.publish(hub, { data: String(i) })
        yield* Effect.yieldNow
      }
    }))
    const client = (n: number) =>
      Effect.gen(function*() {
        for (let round = 0; round < 5; round++) {
          const sink = frameSink()
          yield* Effect.scoped(Effect.gen(function*() {
            yield* Hub.subscribe(hub, { sink: sink.sink, capacity: 1_000, id: `s${n}-${round}` })
            yield* sink.awaitEvents(3 + ((n + round) % 5))
          }))
          seen.push(sink.ids())
        }
      })
    yield* tracker.track(Effect.forEach(range(1, 20), client, { concurrency: "unbounded", discard: true }))
    control.stop = true
    yield* Fiber.join(publisher)
    expect(hub.subscriberCount()).toBe(0)
    expect(seen).toHaveLength(100)
    for (const ids of seen) {
      const seqs = ids.map((id) => Number(id!.slice(2)))
      // Consecutive from where it joined: no duplicate, no hole, in order.
      expect(seqs).toEqual(range(seqs[0]!, seqs[0]! + seqs.length - 1))
    }
    yield* tracker.assertNoLeaks()
  })

  it.effect("(7) twenty subscribers joining and leaving while a publisher broadcasts: consistent set, no duplicates, no deadlock", () =>
    churn)

  it.effect.each([1, 2, 3])(
    "(7) the same under seeded interleavings with preemption (seed %i)",
    (seed) => churn.pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.2)))
  )

  it.effect("closing the subscription's scope unsubscribes; closing its connection does too", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const hub = yield* Hub.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        yield* Hub.subscribe(hub, { sink: frameSink().sink })
        yield* Hub.subscribe(hub, { sink: frameSink().sink })
        expect(hub.subscriberCount()).toBe(2)
      })))
      expect(hub.subscriberCount()).toBe(0)
      yield* tracker.assertNoLeaks()
      const sink = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink })
      yield* Hub.publish(hub, { data: "x" })
      yield* sub.connection.close("shutdown", [SseEvent.make({ event: "connection_close", data: "shutdown" })])
      yield* Hub.publish(hub, { data: "late" })
      yield* Effect.yieldNow
      expect(hub.subscriberCount()).toBe(0)
      expect(yield* sub.outcome).toMatchObject({ _tag: "Closed", reason: "shutdown", delivered: 2 })
      expect(sink.events().map((e) => e.data)).toEqual(["x", "shutdown"])
    }))

  it.effect("a client that goes away is unsubscribed at once", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make()
      const gone = yield* TestSink.make({ failAfter: 1 })
      const sub = yield* Hub.subscribe(hub, { sink: gone.sink })
      yield* Hub.publish(hub, { data: "1" })
      yield* gone.awaitWrites(1)
      yield* Hub.publish(hub, { data: "2" })
      yield* gone.awaitFault
      expect(yield* sub.outcome).toMatchObject({ _tag: "ClientGone" })
      expect(hub.subscriberCount()).toBe(0)
    }))

  it.effect("subscribe writes the preamble first; an invalid preamble frame fails and registers nothing", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const sink = frameSink()
      yield* Hub.publish(hub, { data: "old" })
      yield* Hub.subscribe(hub, {
        sink: sink.sink,
        preamble: [SseEvent.make({ event: "connection_open", data: "{}" }), SseEvent.retry(3000)]
      })
      yield* Hub.publish(hub, { data: "new" })
      yield* sink.awaitEvents(3)
      expect(sink.text()).toBe("event: connection_open\ndata: {}\n\nretry: 3000\n\nid: e-2\ndata: new\n\n")
      const error = yield* Effect.flip(Hub.subscribe(hub, { sink: sink.sink, preamble: [SseEvent.retry(-5)] }))
      expect(error).toMatchObject({ _tag: "InvalidEventError", field: "retry" })
      expect(hub.subscriberCount()).toBe(1)
    }))

  it.effect("metrics: published, deliveries, rejections, slow consumers, subscribers", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ allowedEvents: ["message"] })
      const stuck = yield* TestSink.make({ hangAfter: 0 })
      const sub = yield* Hub.subscribe(hub, { sink: stuck.sink, capacity: 1, writeTimeout: false })
      yield* Hub.subscribe(hub, { sink: frameSink().sink })
      yield* Hub.publish(hub, { data: "1" })
      yield* stuck.awaitFault
      yield* Hub.publish(hub, { data: "2" })
      yield* Hub.publish(hub, { data: "3" }) // disconnects the stuck one
      yield* Effect.exit(Hub.publish(hub, { event: "nope", data: "x" }))
      yield* Effect.exit(Hub.publishJson(hub, 1n))
      yield* sub.outcome
      yield* Effect.yieldNow // the outcome can resume this fiber in the middle of a fan-out
      const snapshot = yield* Metric.snapshot
      const value = (name: string, attribute?: readonly [string, string]) =>
        snapshot.find((m) =>
          m.id === name && (attribute === undefined || m.attributes?.[attribute[0]] === attribute[1])
        )?.state
      expect(value("sluice_hub_events_published_total")).toMatchObject({ count: 3 })
      expect(value("sluice_hub_deliveries_total")).toMatchObject({ count: 5 })
      expect(value("sluice_hub_slow_consumers_total", ["strategy", "disconnect"])).toMatchObject({ count: 1 })
      expect(value("sluice_hub_publish_rejected_total", ["reason", "not-allowed"])).toMatchObject({ count: 1 })
      expect(value("sluice_hub_publish_rejected_total", ["reason", "unserializable"])).toMatchObject({ count: 1 })
      expect(value("sluice_hub_subscribers")).toMatchObject({ value: 1 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("publish is plain synchronous work when no subscriber can make it wait", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make()
      yield* Hub.subscribe(hub, { sink: frameSink().sink, strategy: "sliding", capacity: 1 })
      // Runs to completion without the scheduler: no fiber hop, no wait.
      const exit = Effect.runSyncExit(Effect.forEach(range(1, 1_000), (i) => Hub.publish(hub, { data: String(i) })))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(hub.stats().published).toBe(1_000)
    }))
})
