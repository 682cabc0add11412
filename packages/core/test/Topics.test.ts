import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Metric, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { Hub, Log, Topics } from "../src/index.ts"
import { LeakTracker, SeededScheduler, TestTime } from "../src/testing.ts"
import { FakeLog } from "./support/fakeLog.ts"
import { frameSink, range } from "./support/frames.ts"

describe("Topics", () => {
  it.effect("a topic is created on first use and released when its last subscriber leaves (no history)", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ hub: { history: false } })
      const sink = frameSink()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Topics.subscribe(topics, "room/1", { sink: sink.sink })
        expect(topics.has("room/1")).toBe(true)
        yield* Topics.publish(topics, "room/1", { data: "hi" })
        yield* Topics.publishJson(topics, "room/1", { text: "json" }, { event: "chat" })
        yield* Topics.publish(topics, "room/2", { data: "nobody listens" })
        // room/2 had no subscriber and keeps no history: gone right after the publish.
        expect(topics.has("room/2")).toBe(false)
        yield* sink.awaitEvents(2)
      }))
      expect(sink.events().map((e) => e.data)).toEqual(["hi", "{\"text\":\"json\"}"])
      expect(topics.size()).toBe(0)
    }))

  it.effect("per-topic configuration", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({
        hub: (topic) => topic.startsWith("prices/") ? { allowedEvents: ["price"], epoch: "p" } : { epoch: "x" }
      })
      const error = yield* Effect.flip(Topics.publish(topics, "prices/acme", { event: "chat", data: "x" }))
      expect(error).toMatchObject({ _tag: "EventNotAllowedError", event: "chat" })
      expect(yield* Topics.publish(topics, "prices/acme", { event: "price", data: "1" })).toMatchObject({ id: "p-1" })
      expect(yield* Topics.publish(topics, "chat", { event: "chat", data: "x" })).toMatchObject({ id: "x-1" })
      const invalid = yield* Topics.make({ hub: { gapEvent: "a\nb" } })
      expect(yield* Effect.flip(Topics.publish(invalid, "t", { data: "x" }))).toMatchObject({
        _tag: "InvalidEventError"
      })
      expect(invalid.size()).toBe(0)
    }))

  it.effect("a topic with history lives until its newest event expires, then is released", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const topics = yield* tracker.track(Topics.make({ hub: { history: { maxAge: "1 minute" } } }))
      yield* tracker.track(Topics.publish(topics, "news", { data: "1" }))
      yield* TestTime.advance("30 seconds", "1 second")
      yield* tracker.track(Topics.publish(topics, "news", { data: "2" }))
      expect(topics.stats("news")).toMatchObject({ published: 2, history: { events: 2 } })
      // A subscriber coming and going does not release it either.
      yield* Effect.scoped(tracker.track(Topics.subscribe(topics, "news", { sink: frameSink().sink })))
      expect(topics.has("news")).toBe(true)
      // t = 60 s: event 1 expires, event 2 (published at 30 s) is kept: the timer is re-armed.
      yield* TestTime.advance("59 seconds", "1 second")
      expect(topics.stats("news")).toMatchObject({ history: { events: 1 } })
      expect(topics.has("news")).toBe(true)
      yield* TestTime.advance("1 second", "1 second") // t = 90 s
      expect(topics.has("news")).toBe(false)
      yield* tracker.assertNoLeaks()
    }))

  it.effect("a recreated topic has a new epoch: a client resuming from the old one is told about the gap", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ hub: { history: { maxAge: "10 seconds" } } })
      const { id } = yield* Topics.publish(topics, "t", { data: "old" })
      yield* TestTime.advance("10 seconds", "1 second")
      expect(topics.has("t")).toBe(false)
      yield* Topics.publish(topics, "t", { data: "new" })
      const sink = frameSink()
      const sub = yield* Topics.subscribe(topics, "t", { sink: sink.sink, lastEventId: id })
      expect(sub.replay).toMatchObject({ _tag: "Gap", reason: "restarted", replayed: 0 })
      yield* Topics.publish(topics, "t", { data: "live" })
      yield* sink.awaitEvents(2)
      expect(sink.events()[1]!.data).toBe("live")
    }))

  it.effect("the number of topics is capped with a typed error; released topics free their slot", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ maxTopics: 2, hub: { history: false } })
      const error = yield* Effect.scoped(Effect.gen(function*() {
        yield* Topics.subscribe(topics, "a", { sink: frameSink().sink })
        yield* Topics.subscribe(topics, "b", { sink: frameSink().sink })
        yield* Topics.subscribe(topics, "a", { sink: frameSink().sink }) // existing: fine
        const denied = yield* Effect.flip(Topics.subscribe(topics, "c", { sink: frameSink().sink }))
        const deniedPublish = yield* Effect.flip(Topics.publish(topics, "c", { data: "x" }))
        expect(deniedPublish).toMatchObject({ _tag: "TopicLimitError" })
        return denied
      }))
      expect(error).toBeInstanceOf(Topics.TopicLimitError)
      expect(error).toMatchObject({ _tag: "TopicLimitError", topic: "c", max: 2 })
      expect(topics.size()).toBe(0)
      yield* Effect.scoped(Topics.subscribe(topics, "c", { sink: frameSink().sink }))
    }))

  it.effect("concurrent first subscribers of a topic share one hub; every publish reaches all of them", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ hub: { history: false, epoch: "e" } })
      const sinks = range(1, 20).map(() => frameSink())
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Effect.forEach(sinks, (s) => Topics.subscribe(topics, "t", { sink: s.sink }), {
          concurrency: "unbounded"
        })
        expect(topics.stats("t")).toMatchObject({ subscribers: 20 })
        yield* Topics.publish(topics, "t", { data: "x" })
        for (const s of sinks) yield* s.awaitEvents(1)
      }))
      for (const s of sinks) expect(s.events()).toEqual([{ id: "e-1", data: "x" }])
    }))

  it.effect.each([1, 2, 3, 4, 5, 6, 7, 8])(
    "a topic in use is never released under a subscriber that is still joining (seed %i)",
    (seed) =>
      Effect.gen(function*() {
        const tracker = LeakTracker.make()
        const topics = yield* Topics.make({ hub: { history: false } })
        // Clients join and leave while a publisher keeps naming the topic: the
        // topic is created and released over and over. Nobody may end up on a
        // released hub (it would silently receive nothing).
        const control = { stop: false }
        const publisher = yield* Effect.forkChild(Effect.gen(function*() {
          for (let i = 1; i <= 1_000_000 && !control.stop; i++) {
            yield* Topics.publish(topics, "t", { data: String(i) })
            yield* Effect.yieldNow
          }
        }))
        const published = () => topics.stats("t")?.published ?? 0
        const client = Effect.scoped(Effect.gen(function*() {
          const sink = frameSink()
          const sub = yield* Topics.subscribe(topics, "t", { sink: sink.sink, capacity: 10_000 })
          // Three more publishes, then a few turns for the writer: a subscriber
          // left on a released hub would have received nothing.
          const target = published() + 3
          for (let spins = 0; published() < target && spins < 10_000; spins++) yield* Effect.yieldNow
          for (let spins = 0; sink.events().length === 0 && spins < 10_000; spins++) yield* Effect.yieldNow
          expect(sink.events().length).toBeGreaterThan(0)
          expect(sub.connection.isOpen()).toBe(true)
        }))
        yield* tracker.track(Effect.forEach(range(1, 200), () => client, { concurrency: 8, discard: true }))
        control.stop = true
        yield* Fiber.join(publisher)
        expect(topics.size()).toBe(0)
        yield* tracker.assertNoLeaks()
      }).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.2)))
  )

  it.effect("closing the topics' scope stops the expiry timers", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const topics = yield* Topics.make()
        for (const t of ["a", "b", "c"]) yield* Topics.publish(topics, t, { data: "x" })
        yield* TestTime.settle()
        expect(Object.keys(tracker.byLabel()).toSorted()).toEqual([
          "sluice/topics/a/expiry",
          "sluice/topics/b/expiry",
          "sluice/topics/c/expiry"
        ])
      })))
      yield* tracker.assertNoLeaks()
      yield* TestClock.adjust("2 hours")
    }))

  it.effect("topic gauge", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ hub: { history: { maxEvents: 1 } } })
      yield* Topics.publish(topics, "a", { data: "1" })
      yield* Topics.publish(topics, "b", { data: "1" })
      const gauge = (yield* Metric.snapshot).find((m) => m.id === "sluice_topics")?.state
      expect(gauge).toMatchObject({ value: 2 })
      expect(Hub.isHub(topics)).toBe(false)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("Topics over a Log.Store", () => {
  // A store of logs played by the test (see FakeLog); records what it opened and released.
  const fakeStore = (options: { readonly fail?: (topic: string) => boolean } = {}) => {
    const logs = new Map<string, FakeLog>()
    const released: Array<string> = []
    let opens = 0
    const layer = Layer.succeed(
      Log.Store,
      Log.Store.of({
        open: (name, bounds) =>
          Effect.gen(function*() {
            opens++
            yield* Effect.yieldNow // opening takes a moment: concurrent first users share it
            if (options.fail?.(name) === true) {
              return yield* new Log.LogError({ log: name, operation: "open", reason: "test" })
            }
            const log = logs.get(name) ?? new FakeLog({ epoch: "s", maxEvents: bounds?.maxEvents ?? 1_000 })
            logs.set(name, log)
            yield* Effect.addFinalizer(() => Effect.sync(() => released.push(name)))
            return log
          })
      })
    )
    return { layer, logs, released, opens: () => opens }
  }

  it.effect("each topic's hub is over the store's log; released topics close their log, the record stays", () =>
    Effect.gen(function*() {
      const store = fakeStore()
      const topics = yield* Topics.make({ hub: { history: { maxEvents: 7 } } }).pipe(Effect.provide(store.layer))
      const sink = frameSink()
      yield* Effect.scoped(Effect.gen(function*() {
        const subscribing = yield* Effect.forkChild(Topics.subscribe(topics, "room", { sink: sink.sink }))
        const publishing = yield* Effect.forkChild(Topics.publish(topics, "room", { data: "hi" }))
        yield* Fiber.join(subscribing)
        const log = store.logs.get("room")!
        yield* log.settle()
        expect(yield* Fiber.join(publishing)).toMatchObject({ seq: 1, id: "s-1" })
        yield* sink.awaitEvents(1)
        expect(store.opens()).toBe(1) // two first users, one open
      }))
      expect(sink.ids()).toEqual(["s-1"])
      expect(topics.has("room")).toBe(false)
      yield* Effect.yieldNow
      expect(store.released).toEqual(["room"])
      // Recreated: the same record, so a client resumes where it was.
      const again = frameSink()
      const resumed = yield* Effect.forkChild(
        Topics.subscribe(topics, "room", { sink: again.sink, lastEventId: "s-0" })
      )
      yield* store.logs.get("room")!.settle()
      expect((yield* Fiber.join(resumed)).replay).toEqual({ _tag: "Resumed", lastEventId: "s-0", replayed: 1 })
    }))

  it.effect("a log that cannot be opened fails its users with LogError; the topic is not kept", () =>
    Effect.gen(function*() {
      const store = fakeStore({ fail: (t) => t === "broken" })
      const topics = yield* Topics.make().pipe(Effect.provide(store.layer))
      const results = yield* Effect.all([
        Effect.flip(Topics.publish(topics, "broken", { data: "x" })),
        Effect.flip(Topics.subscribe(topics, "broken", { sink: frameSink().sink }))
      ], { concurrency: "unbounded" })
      for (const error of results) expect(error).toMatchObject({ _tag: "LogError", log: "broken", operation: "open" })
      expect(topics.size()).toBe(0)
      expect(store.opens()).toBe(1)
    }))

  it.effect("topics over Log.layerMemory behave as without a store", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ hub: { history: false } }).pipe(Effect.provide(Log.layerMemory))
      const sink = frameSink()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Topics.subscribe(topics, "t", { sink: sink.sink })
        yield* Topics.publish(topics, "t", { data: "1" })
        yield* sink.awaitEvents(1)
      }))
      expect(topics.size()).toBe(0)
    }))

  it.effect("a topic's options cannot bring their own log, nor an epoch when a store gives the logs", () =>
    Effect.gen(function*() {
      const log = yield* Log.makeMemory()
      const topics = yield* Topics.make({ hub: { log } })
      const exit = yield* Effect.exit(Topics.publish(topics, "t", { data: "x" }))
      expect(String(Exit.isFailure(exit) && exit.cause.reasons[0])).toContain("hub.log")
      const stored = yield* Topics.make({ hub: { epoch: "e" } }).pipe(Effect.provide(Log.layerMemory))
      const epochExit = yield* Effect.exit(Topics.publish(stored, "t", { data: "x" }))
      expect(String(Exit.isFailure(epochExit) && epochExit.cause.reasons[0])).toContain("hub.epoch")
    }))
})
