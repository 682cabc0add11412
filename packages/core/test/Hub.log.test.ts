import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Latch, Result } from "effect"
import { Hub, Log } from "../src/index.ts"
import { LeakTracker } from "../src/testing.ts"
import { FakeLog } from "./support/fakeLog.ts"
import { frameSink, range } from "./support/frames.ts"

/** Yields until `ready` (at most 10 000 turns: a bug fails, it does not hang). */
const until = (ready: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000 && !ready(); i++) yield* Effect.yieldNow
    expect(ready()).toBe(true)
  })

const publishAll = (hub: Hub.Hub, data: ReadonlyArray<string>) =>
  Effect.forkChild(Effect.forEach(data, (d) => Hub.publish(hub, { data: d }), { concurrency: "unbounded" }))

const gap = (reason: string, lastEventId: string, id: string) => ({
  id,
  event: "replay_gap",
  data: JSON.stringify({ reason, lastEventId })
})

describe("Hub over a remote log: publishing", () => {
  it.effect("the events published in one run are one append; each publisher gets its position", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink })
      const publishers = yield* Effect.forkChild(Effect.all([
        Hub.publish(hub, { data: "1" }),
        Hub.publish(hub, { data: "2" }),
        Hub.publish(hub, { data: "3", id: "own" })
      ], { concurrency: "unbounded" }))
      yield* until(() => log.pending.length === 1)
      expect(log.appends).toEqual([3])
      log.complete()
      expect(yield* Fiber.join(publishers)).toEqual([
        { seq: 1, id: "r-1", subscribers: 1 },
        { seq: 2, id: "r-2", subscribers: 1 },
        { seq: 3, id: "own", subscribers: 1 }
      ])
      // Delivery comes through the tail, like everyone else's.
      expect(sink.events()).toEqual([])
      log.deliver()
      yield* sink.awaitEvents(3)
      expect(sink.events()).toEqual([{ id: "r-1", data: "1" }, { id: "r-2", data: "2" }, { id: "own", data: "3" }])
      expect(hub.stats()).toMatchObject({ published: 3, lastEventId: "own" })
    }))

  it.effect("a failed append fails its publishers with LogError; nothing reaches a subscriber", () =>
    Effect.gen(function*() {
      const log = new FakeLog()
      const hub = yield* Hub.make({ log })
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink })
      log.failNext("append")
      const publishers = yield* publishAll(hub, ["1", "2"])
      yield* until(() => log.pending.length === 1)
      log.complete()
      const exit = yield* Fiber.await(publishers)
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]).toMatchObject({
        error: { _tag: "LogError", operation: "append", log: "fake" }
      })
      yield* log.settle()
      expect(sink.events()).toEqual([])
      expect(hub.stats().published).toBe(0)
    }))

  it.effect("publishUnsafe cannot wait for a round trip: WouldBlockError; a refused event never reaches the log", () =>
    Effect.gen(function*() {
      const log = new FakeLog()
      const hub = yield* Hub.make({ log, maxEventBytes: 32, allowedEvents: ["message"] })
      const result = Hub.publishUnsafe(hub, { data: "x" })
      expect(Result.isFailure(result) && result.failure).toMatchObject({
        _tag: "WouldBlockError",
        reason: "asynchronous-log"
      })
      expect(yield* Effect.flip(Hub.publish(hub, { data: "x".repeat(40) }))).toMatchObject({
        _tag: "PayloadTooLargeError"
      })
      expect(yield* Effect.flip(Hub.publish(hub, { event: "admin", data: "x" }))).toMatchObject({
        _tag: "EventNotAllowedError"
      })
      // Measured against the longest id the log can assign: "id: a-<16 digits>\ndata: xx\n\n" is 33 bytes.
      expect(yield* Effect.flip(Hub.publish(hub, { data: "xx" }))).toMatchObject({ _tag: "PayloadTooLargeError" })
      yield* Effect.yieldNow
      expect(log.appends).toEqual([])
    }))
})

describe("Hub over a remote log: replay hand-off", () => {
  it.effect("the read sees more than the tail delivered (Q > F): replayed up to Q, live after Q, once each", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      yield* publishAll(hub, range(1, 5).map(String))
      yield* log.settle()
      const sink = frameSink()
      const subscribing = yield* Effect.forkChild(Hub.subscribe(hub, { sink: sink.sink, lastEventId: "r-2" }))
      yield* until(() => log.reads === 1)
      // While the read is out, 6 and 7 are recorded; the read sees them, the tail delivers them later.
      yield* publishAll(hub, ["6", "7"])
      yield* until(() => log.pending.length === 2)
      log.completeAll("append")
      log.completeAll("read")
      log.deliver()
      const sub = yield* Fiber.join(subscribing)
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "r-2", replayed: 5 })
      yield* publishAll(hub, ["8"])
      yield* log.settle()
      yield* sink.awaitEvents(6)
      expect(sink.ids()).toEqual(range(3, 8).map((i) => `r-${i}`))
    }))

  it.effect("the tail runs ahead of the read (F > Q): the kept entries after Q follow the replay", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      yield* publishAll(hub, range(1, 3).map(String))
      yield* log.settle()
      const sink = frameSink()
      const subscribing = yield* Effect.forkChild(Hub.subscribe(hub, { sink: sink.sink, lastEventId: "r-1" }))
      yield* until(() => log.reads === 1)
      // The read is answered by the record as it is (up to 3) ...
      const answer = log.answerLater()
      // ... and before its answer arrives, 4 and 5 are recorded and delivered live.
      yield* publishAll(hub, ["4", "5"])
      yield* until(() => log.pending.length === 1)
      log.completeAll("append")
      log.deliver()
      answer()
      const sub = yield* Fiber.join(subscribing)
      expect(sub.replay).toMatchObject({ _tag: "Resumed", lastEventId: "r-1" })
      yield* sink.awaitEvents(4)
      expect(sink.ids()).toEqual(range(2, 5).map((i) => `r-${i}`))
    }))

  it.effect("the read and the tail overlap: entries both read and kept aside are written once", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      yield* publishAll(hub, ["1", "2"])
      yield* log.settle()
      const sink = frameSink()
      const subscribing = yield* Effect.forkChild(Hub.subscribe(hub, { sink: sink.sink, lastEventId: "r-1" }))
      yield* until(() => log.reads === 1)
      yield* publishAll(hub, ["3", "4"])
      yield* until(() => log.pending.length === 2)
      log.completeAll("append")
      const answer = log.answerLater() // sees up to 4 ...
      log.deliver() // ... and 3, 4 reach the hand-off before the answer does
      answer()
      const sub = yield* Fiber.join(subscribing)
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "r-1", replayed: 3 })
      yield* publishAll(hub, ["5"])
      yield* log.settle()
      yield* sink.awaitId("r-5")
      expect(sink.ids()).toEqual(range(2, 5).map((i) => `r-${i}`))
    }))

  it.effect("an id of an older epoch gets replay_gap `restarted` (the record was lost), then live entries", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "old" })
      const hub = yield* Hub.make({ log, onGap: "live-only" })
      yield* publishAll(hub, ["1", "2"])
      yield* log.settle()
      log.lose("new")
      yield* log.settle()
      expect(hub.epoch).toBe("new")
      yield* publishAll(hub, ["a"])
      yield* log.settle()
      const sink = frameSink()
      const subscribing = yield* Effect.forkChild(Hub.subscribe(hub, { sink: sink.sink, lastEventId: "old-2" }))
      yield* log.settle()
      const sub = yield* Fiber.join(subscribing)
      expect(sub.replay).toEqual({ _tag: "Gap", lastEventId: "old-2", reason: "restarted", replayed: 0 })
      yield* publishAll(hub, ["b"])
      yield* log.settle()
      yield* sink.awaitEvents(2)
      expect(sink.events()).toEqual([gap("restarted", "old-2", "new-1"), { id: "new-2", data: "b" }])
    }))

  it.effect("the epoch changes while a replay is read: the subscriber is told, and gets the new epoch's entries", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "old" })
      const hub = yield* Hub.make({ log })
      yield* publishAll(hub, ["1", "2", "3"])
      yield* log.settle()
      const sink = frameSink()
      const subscribing = yield* Effect.forkChild(Hub.subscribe(hub, { sink: sink.sink, lastEventId: "old-1" }))
      yield* until(() => log.reads === 1)
      const answer = log.answerLater() // answered from the old record, but the answer arrives late:
      log.lose("new")
      log.deliver()
      yield* publishAll(hub, ["x"])
      yield* until(() => log.pending.length === 1)
      log.complete()
      log.deliver()
      answer()
      const sub = yield* Fiber.join(subscribing)
      expect(sub.replay).toEqual({ _tag: "Gap", lastEventId: "old-1", reason: "restarted", replayed: 0 })
      yield* sink.awaitEvents(2)
      expect(sink.events()).toEqual([gap("restarted", "old-1", "new-0"), { id: "new-1", data: "x" }])
    }))

  it.effect("more live entries during the read than the budget: the gap signal `budget`, then live, once each", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log, replayBudget: { maxEvents: 3 } })
      yield* publishAll(hub, ["1", "2"])
      yield* log.settle()
      const sink = frameSink()
      const subscribing = yield* Effect.forkChild(Hub.subscribe(hub, { sink: sink.sink, lastEventId: "r-1" }))
      yield* until(() => log.reads === 1)
      const answer = log.answerLater() // replays 2 (Q = 2) ...
      // ... while five entries arrive live: more than the hand-off may keep.
      yield* publishAll(hub, range(3, 7).map(String))
      yield* until(() => log.pending.length === 1)
      log.complete()
      log.deliver()
      answer()
      yield* log.settle()
      const sub = yield* Fiber.join(subscribing)
      expect(sub.replay).toEqual({ _tag: "Gap", lastEventId: "r-1", reason: "budget", replayed: 0 })
      yield* publishAll(hub, ["8"])
      yield* log.settle()
      yield* sink.awaitId("r-8")
      expect(sink.events()).toEqual([gap("budget", "r-1", "r-7"), { id: "r-8", data: "8" }])
    }))

  it.effect("a read that fails fails the subscribe with LogError and registers nothing", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const log = new FakeLog()
      const hub = yield* Hub.make({ log })
      log.failNext("read")
      const subscribing = yield* Effect.forkChild(
        tracker.track(Effect.scoped(Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "a-0" })))
      )
      yield* until(() => log.reads === 1)
      log.complete()
      const exit = yield* Fiber.await(subscribing)
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]).toMatchObject({ error: { _tag: "LogError" } })
      expect(hub.subscriberCount()).toBe(0)
      yield* tracker.assertNoLeaks()
    }))

  it.effect.each([1, 2, 3, 4, 5])(
    "joiners with different last ids while events are published, completions in a seeded order (seed %i): no gap, no duplicate",
    (seed) =>
      Effect.gen(function*() {
        const log = new FakeLog({ epoch: "r", maxEvents: 40 })
        const hub = yield* Hub.make({ log })
        const driver = yield* log.drive(seed)
        const events = 120
        const allJoined = yield* Deferred.make<void>()
        const publisher = yield* Effect.forkChild(Effect.gen(function*() {
          for (let i = 1; i < events; i++) yield* Hub.publish(hub, { data: String(i) })
          yield* Deferred.await(allJoined)
          yield* Hub.publish(hub, { data: String(events) })
        }))
        let joined = 0
        const joiners = 30
        const joiner = (k: number) =>
          Effect.scoped(Effect.gen(function*() {
            for (let spins = 0; hub.stats().published < k * 3 && spins < 100_000; spins++) yield* Effect.yieldNow
            const lastSeq = Math.max(0, hub.stats().published - (k % 7) * 9)
            const lastEventId = k % 5 === 0 ? undefined : `r-${lastSeq}`
            const sink = frameSink()
            const sub = yield* Hub.subscribe(hub, { sink: sink.sink, capacity: events + 10, lastEventId })
            if (++joined === joiners) yield* Deferred.succeed(allJoined, undefined)
            yield* sink.awaitId(`r-${events}`)
            const frames = sink.events()
            const seq = (f: { readonly id?: string }) => Number(f.id!.slice(2))
            let run = frames
            let start: number
            if (sub.replay._tag === "Resumed") start = lastSeq + 1
            else if (sub.replay._tag === "Gap") {
              expect(sub.replay.reason).toBe("expired")
              start = seq(frames[0]!) + 1
              run = frames.slice(1)
            } else start = seq(frames[0]!)
            expect(run.map(seq)).toEqual(range(start, events))
          }))
        yield* Effect.forEach(range(1, joiners), joiner, { concurrency: "unbounded", discard: true })
        yield* Fiber.join(publisher)
        yield* Fiber.interrupt(driver)
        expect(hub.subscriberCount()).toBe(0)
      })
  )
})

describe("Hub over a remote log: the tail", () => {
  it.effect("a lost tail message is a hole: it is read from the record before anything newer is delivered", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink })
      for (const batch of [["1", "2"], ["3"], ["4", "5"]]) {
        yield* publishAll(hub, batch)
        yield* until(() => log.pending.length === 1)
        log.complete()
      }
      log.deliver(1)
      log.drop() // ["3"] never arrives
      log.deliver(1) // ["4", "5"]: a jump from 2 to 4
      yield* until(() => log.reads === 1)
      expect(sink.ids()).toEqual(["r-1", "r-2"])
      log.complete()
      yield* sink.awaitEvents(5)
      expect(sink.ids()).toEqual(range(1, 5).map((i) => `r-${i}`))
    }))

  it.effect("Missed: the hole after the last delivered entry is read; later changes wait, in order", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink })
      yield* publishAll(hub, ["1"])
      yield* log.settle()
      yield* publishAll(hub, ["2"])
      yield* until(() => log.pending.length === 1)
      log.complete()
      log.drop() // lost, and the log knows it
      log.missed()
      yield* publishAll(hub, ["3"])
      yield* until(() => log.pending.length === 1)
      log.complete()
      log.deliver() // Missed, then Appended(3): 3 waits for the refill
      yield* until(() => log.reads === 1)
      expect(sink.ids()).toEqual(["r-1"])
      log.complete()
      yield* sink.awaitEvents(3)
      expect(sink.ids()).toEqual(["r-1", "r-2", "r-3"])
    }))

  it.effect("entries the tail missed and the record no longer has: a gap signal to every subscriber, then on", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink })
      yield* publishAll(hub, ["1"])
      yield* log.settle()
      yield* publishAll(hub, ["2", "3"])
      yield* until(() => log.pending.length === 1)
      log.complete()
      log.drop()
      log.trim(3) // trimmed before the node could read them
      yield* publishAll(hub, ["4"])
      yield* log.settle()
      yield* sink.awaitEvents(3)
      expect(sink.events()).toEqual([
        { id: "r-1", data: "1" },
        gap("expired", "r-1", "r-3"),
        { id: "r-4", data: "4" }
      ])
    }))

  it.effect("the epoch changes: live subscribers get replay_gap `restarted` and go on with the new epoch", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "old" })
      const hub = yield* Hub.make({ log })
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink })
      yield* publishAll(hub, ["1", "2"])
      yield* log.settle()
      log.lose("new")
      yield* publishAll(hub, ["3"])
      yield* log.settle()
      yield* sink.awaitEvents(4)
      expect(sink.events()).toEqual([
        { id: "old-1", data: "1" },
        { id: "old-2", data: "2" },
        gap("restarted", "old-2", "new-0"),
        { id: "new-1", data: "3" }
      ])
      expect(hub.epoch).toBe("new")
      // An unannounced new epoch (the first entry of the new record) is taken the same way.
      log.lose("newer", true)
      yield* publishAll(hub, ["4"])
      yield* log.settle()
      yield* sink.awaitEvents(6)
      expect(sink.events().slice(4)).toEqual([gap("restarted", "new-1", "newer-0"), { id: "newer-1", data: "4" }])
    }))

  it.effect("suspend over a remote log: delivery waits for room (later changes held, in order)", () =>
    Effect.gen(function*() {
      const log = new FakeLog({ epoch: "r" })
      const hub = yield* Hub.make({ log })
      const hold = yield* Latch.make(false)
      const slow = frameSink({ hold })
      const fast = frameSink()
      yield* Hub.subscribe(hub, { sink: slow.sink, strategy: "suspend", capacity: 1, writeTimeout: false })
      yield* Hub.subscribe(hub, { sink: fast.sink, capacity: 100 })
      for (const i of range(1, 4)) {
        yield* publishAll(hub, [String(i)])
        yield* until(() => log.pending.length === 1)
        log.complete()
        log.deliver()
        yield* Effect.yieldNow
      }
      yield* until(() => fast.events().length >= 3)
      // 1 in the held write, 2 in the mailbox, 3 waiting for room: 4 waits behind it.
      expect(fast.ids()).toEqual(["r-1", "r-2", "r-3"])
      yield* hold.open
      yield* slow.awaitEvents(4)
      yield* fast.awaitEvents(4)
      expect(slow.ids()).toEqual(range(1, 4).map((i) => `r-${i}`))
      expect(fast.ids()).toEqual(range(1, 4).map((i) => `r-${i}`))
    }))
})

describe("Log.makeMemory", () => {
  it.effect("a hub over a given in-memory log; history and epoch belong to the log", () =>
    Effect.gen(function*() {
      const log = yield* Log.makeMemory({ name: "prices", epoch: "m", maxEvents: 1 })
      const hub = yield* Hub.make({ log })
      yield* Effect.forEach(range(1, 3), (i) => Hub.publish(hub, { data: String(i) }))
      expect(log.stats()).toMatchObject({ events: 1 })
      expect(hub.epoch).toBe("m")
      const read = yield* log.read(Log.afterId("m-1", { maxEvents: 10, maxBytes: 1_000 }))
      expect(read).toMatchObject({ _tag: "NotFound", reason: "expired", lastSeq: 3 })
      const exit = yield* Effect.exit(Hub.make({ log, history: { maxEvents: 5 } }))
      expect(Exit.isFailure(exit) && String(exit.cause.reasons[0])).toContain("history")
    }))
})
