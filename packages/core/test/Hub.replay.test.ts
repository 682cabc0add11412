import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Metric, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { Hub, SseEvent } from "../src/index.ts"
import { LeakTracker, SeededScheduler } from "../src/testing.ts"
import { frameSink, range } from "./support/frames.ts"

const publishAll = (hub: Hub.Hub, ids: ReadonlyArray<number>) =>
  Effect.forEach(ids, (i) => Hub.publish(hub, { data: String(i) }), { discard: true })

const gap = (reason: string, lastEventId: string, id: string) => ({
  id,
  event: "replay_gap",
  data: JSON.stringify({ reason, lastEventId })
})
const event = (i: number) => ({ id: `e-${i}`, data: String(i) })

describe("Hub: replay by Last-Event-ID", () => {
  it.effect("resumes after the given id: the retained suffix, then live events", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      yield* publishAll(hub, range(1, 10))
      const sink = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId: "e-4", capacity: 2 })
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "e-4", replayed: 6 })
      yield* publishAll(hub, [11, 12])
      yield* sink.awaitEvents(8)
      expect(sink.events()).toEqual(range(5, 12).map(event))
    }))

  it.effect("without a Last-Event-ID only live events; with the newest id nothing is replayed", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      yield* publishAll(hub, range(1, 3))
      const fresh = frameSink()
      const current = frameSink()
      const a = yield* Hub.subscribe(hub, { sink: fresh.sink })
      const b = yield* Hub.subscribe(hub, { sink: current.sink, lastEventId: "e-3" })
      expect(a.replay).toEqual({ _tag: "Live" })
      expect(b.replay).toEqual({ _tag: "Resumed", lastEventId: "e-3", replayed: 0 })
      yield* publishAll(hub, [4])
      yield* fresh.awaitEvents(1)
      yield* current.awaitEvents(1)
      expect(fresh.events()).toEqual([event(4)])
      expect(current.events()).toEqual([event(4)])
    }))

  it.effect("the stream order is: preamble, gap signal, replayed events, live events", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 3 }, onGap: "replay-retained" })
      yield* publishAll(hub, range(1, 6))
      const sink = frameSink()
      yield* Hub.subscribe(hub, {
        sink: sink.sink,
        lastEventId: "e-1",
        preamble: [SseEvent.make({ event: "connection_open", data: "{}" }), SseEvent.retry(1000)]
      })
      yield* publishAll(hub, [7])
      yield* sink.awaitEvents(7)
      expect(sink.frames()).toEqual([
        { event: "connection_open", data: "{}" },
        { retry: "1000" },
        gap("expired", "e-1", "e-3"),
        ...range(4, 7).map(event)
      ])
    }))

  it.effect("gap signals: expired, from another instance (restart), unknown, ahead of the hub; then live events only", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 5 } })
      yield* publishAll(hub, range(1, 10)) // retained: 6..10
      const cases = [
        ["e-2", "expired"],
        ["x9-7", "restarted"],
        ["not-an-id!", "unknown"],
        ["e-99", "unknown"]
      ] as const
      // By default a gap gets no history at all: the signal points at the newest event.
      for (const [lastEventId, reason] of cases) {
        const sink = frameSink()
        const sub = yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId })
        expect(sub.replay).toEqual({ _tag: "Gap", lastEventId, reason, replayed: 0 })
        yield* sink.awaitEvents(1)
        expect(sink.events()).toEqual([gap(reason, lastEventId, "e-10")])
      }
      // With onGap replay-retained: the retained tail after the signal.
      const tail = yield* Hub.make({ epoch: "e", history: { maxEvents: 5 }, onGap: "replay-retained" })
      yield* publishAll(tail, range(1, 10))
      for (const [lastEventId, reason] of cases) {
        const sink = frameSink()
        const sub = yield* Hub.subscribe(tail, { sink: sink.sink, lastEventId })
        expect(sub.replay).toEqual({ _tag: "Gap", lastEventId, reason, replayed: 5 })
        yield* sink.awaitEvents(6)
        expect(sink.events()).toEqual([gap(reason, lastEventId, "e-5"), ...range(6, 10).map(event)])
      }
      // An empty Last-Event-ID is no id at all (a client with no last id sends none).
      const empty = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "" })
      expect(empty.replay).toEqual({ _tag: "Live" })
      // The oldest retained event's predecessor is not a gap: everything after it is retained.
      const edge = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "e-5" })
      expect(edge.replay).toEqual({ _tag: "Resumed", lastEventId: "e-5", replayed: 5 })
    }))

  it.effect("a real restart: ids of the previous instance are detected by their epoch", () =>
    Effect.gen(function*() {
      const before = yield* Hub.make()
      const { id } = yield* Hub.publish(before, { data: "old" })
      const after = yield* Hub.make()
      yield* Hub.publish(after, { data: "new" })
      const sink = frameSink()
      const sub = yield* Hub.subscribe(after, { sink: sink.sink, lastEventId: id })
      expect(sub.replay).toMatchObject({ _tag: "Gap", reason: "restarted", replayed: 0 })
      yield* Hub.publish(after, { data: "live" })
      yield* sink.awaitEvents(2)
      expect(sink.events().map((e) => e.data)).toEqual([
        JSON.stringify({ reason: "restarted", lastEventId: id }),
        "live"
      ])
    }))

  it.effect("reconnecting with the gap signal's id resumes exactly: no second gap, no duplicate", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 4 }, onGap: "replay-retained" })
      yield* publishAll(hub, range(1, 8))
      const first = frameSink()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Hub.subscribe(hub, { sink: first.sink, lastEventId: "e-1" })
        yield* first.awaitEvents(1) // the client drops right after the gap signal
      }))
      const resumeFrom = first.events()[0]!.id!
      expect(resumeFrom).toBe("e-4")
      const second = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: second.sink, lastEventId: resumeFrom })
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "e-4", replayed: 4 })
      yield* publishAll(hub, [9])
      yield* second.awaitEvents(5)
      expect(second.events()).toEqual(range(5, 9).map(event))
    }))

  it.effect("onGap live-only: the gap signal points at the newest event; nothing is replayed", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 2 }, onGap: "live-only", gapEvent: "resync" })
      yield* publishAll(hub, range(1, 5))
      const sink = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId: "e-1" })
      expect(sub.replay).toEqual({ _tag: "Gap", lastEventId: "e-1", reason: "expired", replayed: 0 })
      yield* publishAll(hub, [6])
      yield* sink.awaitEvents(2)
      expect(sink.events()).toEqual([{ ...gap("expired", "e-1", "e-5"), event: "resync" }, event(6)])
    }))

  it.effect("publisher-given ids are found by replay, mixed with hub-assigned ones", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 4 } })
      yield* Hub.publish(hub, { id: "a", data: "1" })
      yield* Hub.publish(hub, { data: "2" })
      yield* Hub.publish(hub, { id: "c", data: "3" })
      yield* Hub.publish(hub, { id: "d", data: "4" })
      const sink = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId: "a" })
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "a", replayed: 3 })
      yield* sink.awaitEvents(3)
      expect(sink.events()).toEqual([{ id: "e-2", data: "2" }, { id: "c", data: "3" }, { id: "d", data: "4" }])
      // Once "a" has left the history it is unknown (a publisher id says nothing about its age).
      yield* Hub.publish(hub, { id: "e", data: "5" })
      const later = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "a" })
      expect(later.replay).toMatchObject({ _tag: "Gap", reason: "unknown", replayed: 0 })
      // A reused id resumes after its latest use.
      yield* Hub.publish(hub, { id: "c", data: "6" })
      const reused = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "c" })
      expect(reused.replay).toEqual({ _tag: "Resumed", lastEventId: "c", replayed: 0 })
    }))
})

describe("Hub: bounded history", () => {
  it.effect("by count", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 3 } })
      yield* publishAll(hub, range(1, 100))
      expect(hub.stats().history.events).toBe(3)
      const sink = frameSink()
      yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId: "e-97" })
      yield* sink.awaitEvents(3)
      expect(sink.events()).toEqual(range(98, 100).map(event))
    }))

  it.effect("by bytes", () =>
    Effect.gen(function*() {
      const frameBytes = "id: e-20\ndata: 20\n\n".length
      const hub = yield* Hub.make({ epoch: "e", history: { maxBytes: 3 * frameBytes } })
      yield* publishAll(hub, range(1, 20)) // 18, 19 and 20 fit
      expect(hub.stats().history).toEqual({ events: 3, bytes: 3 * frameBytes })
      const sub = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "e-5" })
      expect(sub.replay).toMatchObject({ _tag: "Gap", reason: "expired", replayed: 0 })
      // An event larger than the whole budget is published but not retained.
      yield* Hub.publish(hub, { data: "x".repeat(100) })
      expect(hub.stats().history).toEqual({ events: 0, bytes: 0 })
    }))

  it.effect("by age, on the Effect clock", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxAge: "10 seconds" } })
      yield* publishAll(hub, [1]) // t = 0
      yield* TestClock.adjust("5 seconds")
      yield* publishAll(hub, [2]) // t = 5
      yield* TestClock.adjust("4999 millis")
      expect(hub.stats().history.events).toBe(2)
      yield* TestClock.adjust("1 millis") // t = 10: event 1 is 10 s old
      expect(hub.stats().history.events).toBe(1)
      const sink = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId: "e-1" })
      expect(sub.replay).toEqual({ _tag: "Resumed", lastEventId: "e-1", replayed: 1 })
      yield* TestClock.adjust("5 seconds") // t = 15: event 2 expires
      const late = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "e-1" })
      expect(late.replay).toMatchObject({ _tag: "Gap", reason: "expired", replayed: 0 })
      expect(hub.stats().history).toEqual({ events: 0, bytes: 0 })
    }))

  it.effect("no history: nothing is replayed, but an up-to-date client is not told about a gap", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: false })
      yield* publishAll(hub, range(1, 3))
      const current = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "e-3" })
      const behind = yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "e-2" })
      expect(current.replay).toEqual({ _tag: "Resumed", lastEventId: "e-3", replayed: 0 })
      expect(behind.replay).toEqual({ _tag: "Gap", lastEventId: "e-2", reason: "expired", replayed: 0 })
      expect(hub.stats().history).toEqual({ events: 0, bytes: 0 })
    }))
})

describe("Hub: replay is bounded per request", () => {
  it.effect("an unknown id against a long history: the gap signal and nothing of the history", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: 5_000, maxBytes: 10_000_000 } })
      yield* publishAll(hub, range(1, 5_000))
      const sink = frameSink()
      const sub = yield* Hub.subscribe(hub, { sink: sink.sink, lastEventId: "x" })
      expect(sub.replay).toEqual({ _tag: "Gap", lastEventId: "x", reason: "unknown", replayed: 0 })
      yield* Hub.publish(hub, { data: "live" })
      yield* sink.awaitEvents(2)
      expect(sink.events()).toEqual([gap("unknown", "x", "e-5000"), { id: "e-5001", data: "live" }])
      // Bounded even as a tail: the newest events within the budget.
      const tail = yield* Hub.make({ epoch: "e", history: { maxEvents: 5_000 }, onGap: "replay-retained" })
      yield* publishAll(tail, range(1, 5_000))
      const bounded = yield* Hub.subscribe(tail, { sink: frameSink().sink, lastEventId: "x" })
      expect(bounded.replay).toEqual({ _tag: "Gap", lastEventId: "x", reason: "unknown", replayed: 1_000 })
    }))

  it.effect("a client that missed more than the budget (events or bytes) gets the gap signal `budget`", () =>
    Effect.gen(function*() {
      const byCount = yield* Hub.make({ epoch: "e", replayBudget: { maxEvents: 10 } })
      yield* publishAll(byCount, range(1, 100))
      const within = yield* Hub.subscribe(byCount, { sink: frameSink().sink, lastEventId: "e-90" })
      expect(within.replay).toEqual({ _tag: "Resumed", lastEventId: "e-90", replayed: 10 })
      const sink = frameSink()
      const behind = yield* Hub.subscribe(byCount, { sink: sink.sink, lastEventId: "e-89" })
      expect(behind.replay).toEqual({ _tag: "Gap", lastEventId: "e-89", reason: "budget", replayed: 0 })
      yield* sink.awaitEvents(1)
      expect(sink.events()).toEqual([gap("budget", "e-89", "e-100")])
      // With a tail: the newest 10, and the signal points just before them.
      const tail = yield* Hub.make({ epoch: "e", replayBudget: { maxEvents: 10 }, onGap: "replay-retained" })
      yield* publishAll(tail, range(1, 100))
      const tailSink = frameSink()
      const tailed = yield* Hub.subscribe(tail, { sink: tailSink.sink, lastEventId: "e-50" })
      expect(tailed.replay).toEqual({ _tag: "Gap", lastEventId: "e-50", reason: "budget", replayed: 10 })
      yield* tailSink.awaitEvents(11)
      expect(tailSink.events()).toEqual([gap("budget", "e-50", "e-90"), ...range(91, 100).map(event)])
      // By bytes: every frame here is 15 to 18 bytes.
      const byBytes = yield* Hub.make({ epoch: "e", replayBudget: { maxBytes: 100 } })
      yield* publishAll(byBytes, range(1, 100))
      const fits = yield* Hub.subscribe(byBytes, { sink: frameSink().sink, lastEventId: "e-95" })
      expect(fits.replay).toMatchObject({ _tag: "Resumed", replayed: 5 })
      const tooMany = yield* Hub.subscribe(byBytes, { sink: frameSink().sink, lastEventId: "e-80" })
      expect(tooMany.replay).toMatchObject({ _tag: "Gap", reason: "budget", replayed: 0 })
    }))

  it.effect("budget gaps are counted by reason; a budget that cannot work is refused, naming the option", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e", replayBudget: { maxEvents: 1 } })
      yield* publishAll(hub, range(1, 3))
      yield* Hub.subscribe(hub, { sink: frameSink().sink, lastEventId: "e-1" })
      const snapshot = yield* Metric.snapshot
      const budget = snapshot.find((m) => m.id === "sluice_hub_replays_total" && m.attributes?.["result"] === "budget")
      expect(budget?.state).toMatchObject({ count: 1 })
      for (const replayBudget of [{ maxEvents: 0 }, { maxBytes: Number.NaN }]) {
        const exit = yield* Effect.exit(Hub.make({ replayBudget }))
        expect(Exit.isFailure(exit) && String(exit.cause.reasons[0])).toContain("Hub: invalid replayBudget.")
      }
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

// Continuous publishing while hundreds of subscribers join with different last
// ids: each must see exactly the retained suffix after its id followed by every
// later event, in order (after a gap signal when its id had expired).
const joinWhilePublishing = (
  options: { readonly events: number; readonly joiners: number; readonly history: number }
) =>
  Effect.gen(function*() {
    const tracker = LeakTracker.make()
    const hub = yield* Hub.make({ epoch: "e", history: { maxEvents: options.history } })
    // The last event waits until everyone has joined, so every subscriber has
    // at least one live event to prove its hand-off with.
    const allJoined = yield* Deferred.make<void>()
    let joined = 0
    const publisher = yield* Effect.forkChild(Effect.gen(function*() {
      for (let i = 1; i < options.events; i++) {
        yield* Hub.publish(hub, { data: String(i) })
        if (i % 3 === 0) yield* Effect.yieldNow
      }
      yield* Deferred.await(allJoined)
      yield* Hub.publish(hub, { data: String(options.events) })
    }))
    const joiner = (k: number) =>
      Effect.scoped(Effect.gen(function*() {
        // Join at a point spread over the run, with a last id up to 1.5 history lengths back.
        const joinAt = Math.floor((k * (options.events - 1)) / options.joiners)
        for (let spins = 0; hub.stats().published < joinAt && spins < 1_000_000; spins++) yield* Effect.yieldNow
        const published = hub.stats().published
        const back = (k * 7919) % Math.floor(options.history * 1.5)
        const lastSeq = Math.max(0, published - back)
        const lastEventId = k % 10 === 0 ? undefined : `e-${lastSeq}`
        const sink = frameSink()
        const sub = yield* Hub.subscribe(hub, {
          sink: sink.sink,
          capacity: options.events + 10,
          id: `j${k}`,
          lastEventId
        })
        if (++joined === options.joiners) yield* Deferred.succeed(allJoined, undefined)
        // Wait for the final event, never for a count: a gap must fail, not hang.
        yield* sink.awaitId(`e-${options.events}`)
        const frames = sink.events()
        const seq = (frame: { readonly id?: string }) => Number(frame.id!.slice(2))
        let start: number
        let run = frames
        switch (sub.replay._tag) {
          case "Resumed": {
            start = lastSeq + 1
            expect(sub.replay.replayed).toBeLessThanOrEqual(options.history)
            break
          }
          case "Gap": {
            expect(sub.replay.reason).toBe("expired")
            expect(frames[0]!.event).toBe("replay_gap")
            // Resumes from the oldest retained event at registration time.
            start = seq(frames[0]!) + 1
            expect(published - start).toBeLessThan(options.history)
            run = frames.slice(1)
            break
          }
          case "Live": {
            start = seq(frames[0]!)
            expect(start).toBeGreaterThan(published)
          }
        }
        // The retained suffix after its id, then every later event: consecutive, once each.
        expect(run.map(seq)).toEqual(range(start, options.events))
        return sub.replay._tag === "Gap" ? "gap" : sub.replay._tag === "Resumed" ? "resumed" : "live"
      }))
    const kinds = yield* tracker.track(
      Effect.forEach(range(1, options.joiners), joiner, { concurrency: "unbounded" })
    )
    yield* Fiber.join(publisher)
    expect(hub.subscriberCount()).toBe(0)
    yield* tracker.assertNoLeaks()
    return { gaps: kinds.filter((k) => k === "gap").length, resumed: kinds.filter((k) => k === "resumed").length }
  })

describe("Hub: replay hand-off under concurrent publishing", () => {
  it.effect("(9) 300 subscribers join with different last ids while events are published: no gap, no duplicate", () =>
    Effect.gen(function*() {
      const result = yield* joinWhilePublishing({ events: 1_000, joiners: 300, history: 150 })
      // The run exercised both paths.
      expect(result.gaps).toBeGreaterThan(20)
      expect(result.resumed).toBeGreaterThan(100)
    }))

  it.effect.each([1, 2, 3, 4])(
    "(9) the same under seeded interleavings with preemption (seed %i)",
    (seed) =>
      joinWhilePublishing({ events: 400, joiners: 120, history: 60 }).pipe(
        Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.2))
      )
  )
})
