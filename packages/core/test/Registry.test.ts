import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scheduler, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type Connection, Registry, Sink, SseEvent } from "../src/index.ts"
import { LeakTracker, SeededScheduler, TestSink, TestTime } from "../src/testing.ts"

const ev = (data: string) => SseEvent.make({ data })
const closeFrames = (reason: string) => [SseEvent.make({ event: "connection_close", data: reason })]
const dataOf = (text: string) =>
  text.split("\n\n").filter((b) => b.length > 0).map((b) => {
    const type = /^event: (.*)$/m.exec(b)?.[1]
    const data = /^data: (.*)$/m.exec(b)?.[1] ?? ""
    return type === undefined ? data : `${type}:${data}`
  })

// Opens a keyed connection in its own scope, returning the handle, the sink and the scope.
const open = (registry: Registry.Registry, key: string, extra: Partial<Registry.ConnectOptions> = {}) =>
  Effect.gen(function*() {
    const sink = yield* TestSink.make()
    const scope = yield* Scope.make()
    const connection = yield* Registry.connect(registry, key, {
      sink: sink.sink,
      heartbeat: false,
      closeFrames,
      ...extra
    }).pipe(Scope.provide(scope))
    return { connection, sink, scope }
  })

describe("Registry", () => {
  it.effect("events sent before anyone connects wait, then arrive in order before live events", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.make()
      expect(yield* Registry.send(registry, "task-1", ev("a"))).toBe("pending")
      expect(yield* Registry.send(registry, "task-1", ev("b"))).toBe("pending")
      expect(registry.pendingCount("task-1")).toBe(2)
      const { connection, sink } = yield* open(registry, "task-1", {
        preamble: [SseEvent.make({ event: "open", data: "" })]
      })
      expect(yield* Registry.send(registry, "task-1", ev("c"))).toBe("delivered")
      yield* sink.awaitWrites(2)
      expect(dataOf(sink.text())).toEqual(["open:", "a", "b", "c"])
      expect(registry.isLive("task-1")).toBe(true)
      expect(connection.isOpen()).toBe(true)
    }))

  it.effect("a new connection replaces the old one, which ends with replaced after what it accepted", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.make()
      const a = yield* open(registry, "k")
      yield* Registry.send(registry, "k", ev("1"))
      const b = yield* open(registry, "k")
      yield* Registry.send(registry, "k", ev("2"))
      const outcomeA = yield* a.connection.outcome
      expect(outcomeA).toMatchObject({ _tag: "Closed", reason: "replaced" })
      expect(dataOf(a.sink.text())).toEqual(["1", "connection_close:replaced"])
      yield* b.sink.awaitWrites(1)
      expect(dataOf(b.sink.text())).toEqual(["2"])
      expect(b.connection.isOpen()).toBe(true)
      expect(registry.stats()).toMatchObject({ live: 1, replaced: 1 })
    }))

  for (const order of ["old client leaves after the replacement", "old client leaves during the replacement"]) {
    it.effect(`the replaced connection's cleanup never removes its successor (${order})`, () =>
      Effect.gen(function*() {
        for (let seed = 1; seed <= 25; seed++) {
          const registry = yield* Registry.make()
          const a = yield* open(registry, "k")
          const goAway = a.connection.lost(new Sink.WriteError({ reason: "closed", detail: "client left" }))
          const b = order.startsWith("old client leaves after")
            ? yield* Effect.tap(open(registry, "k"), () => goAway)
            : yield* Effect.gen(function*() {
              // Both at once, in an order chosen by the seed.
              const left = yield* Effect.forkChild(goAway)
              const connected = yield* Effect.forkChild(open(registry, "k"))
              yield* Fiber.join(left)
              return yield* Fiber.join(connected)
            }).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.3)))
          yield* a.connection.outcome
          yield* TestTime.settle()
          expect(registry.isLive("k")).toBe(true)
          expect(b.connection.isOpen()).toBe(true)
          expect(yield* Registry.send(registry, "k", ev(`to b ${seed}`))).toBe("delivered")
          yield* b.sink.awaitWrites(1)
          expect(dataOf(b.sink.text())).toEqual([`to b ${seed}`])
          yield* Scope.close(b.scope, Exit.void)
          yield* Scope.close(a.scope, Exit.void)
        }
      }))
  }

  it.effect("a terminal send delivers the event, then the close frames, then ends; nothing after it", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.make()
      const a = yield* open(registry, "job")
      yield* Registry.send(registry, "job", ev("50%"))
      yield* Registry.send(registry, "job", ev("100%"), { terminal: "task_completed" })
      const outcome = yield* a.connection.outcome
      expect(outcome).toMatchObject({ _tag: "Closed", reason: "task_completed" })
      expect(dataOf(a.sink.text())).toEqual(["50%", "100%", "connection_close:task_completed"])
      const late = yield* Effect.flip(Registry.send(registry, "job", ev("late")))
      expect(late).toMatchObject({ _tag: "KeyClosedError", reason: "task_completed" })
      // A client that comes back later learns the end at once.
      const again = yield* open(registry, "job", { preamble: [SseEvent.make({ event: "open", data: "" })] })
      yield* again.connection.outcome
      expect(dataOf(again.sink.text())).toEqual(["open:", "100%", "connection_close:task_completed"])
    }))

  it.effect("a terminal event sent before anyone connects is delivered on connect, after the waiting ones", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.make()
      yield* Registry.send(registry, "job", ev("1"))
      yield* Registry.send(registry, "job", ev("failed at 2"), { terminal: "task_failed" })
      const a = yield* open(registry, "job")
      expect(yield* a.connection.outcome).toMatchObject({ _tag: "Closed", reason: "task_failed", delivered: 3 })
      expect(dataOf(a.sink.text())).toEqual(["1", "failed at 2", "connection_close:task_failed"])
    }))

  it.effect("bounded outbox: sliding (default), dropping and fail", () =>
    Effect.gen(function*() {
      const oldest = yield* Registry.make({ pending: { capacity: 3 } })
      for (const d of ["1", "2", "3", "4", "5"]) yield* Registry.send(oldest, "k", ev(d))
      const a = yield* open(oldest, "k")
      yield* a.sink.awaitWrites(1)
      expect(dataOf(a.sink.text())).toEqual(["3", "4", "5"])
      expect(oldest.stats().droppedOverflow).toBe(2)

      const newest = yield* Registry.make({ pending: { capacity: 3, strategy: "dropping" } })
      const results = yield* Effect.forEach(["1", "2", "3", "4"], (d) => Registry.send(newest, "k", ev(d)))
      expect(results).toEqual(["pending", "pending", "pending", "dropped"])

      const strict = yield* Registry.make({ pending: { capacity: 1, strategy: "fail" } })
      yield* Registry.send(strict, "k", ev("1"))
      expect(yield* Effect.flip(Registry.send(strict, "k", ev("2")))).toMatchObject({
        _tag: "PendingFullError",
        capacity: 1
      })
      // A terminal event always gets in.
      expect(yield* Registry.send(strict, "k", ev("end"), { terminal: "done" })).toBe("pending")
    }))

  describe("budget across all keys", () => {
    // "data: x\n\n" is 9 bytes, plus the bookkeeping every waiting event counts.
    const one = 9 + Registry.pendingEventOverhead

    it.effect("fail (default): a send past the budget is refused with a typed error, whatever the key", () =>
      Effect.gen(function*() {
        const registry = yield* Registry.make({ budget: { maxBytes: 3 * one } })
        for (const key of ["a", "b", "c"]) expect(yield* Registry.send(registry, key, ev("x"))).toBe("pending")
        expect(registry.stats().pendingBytes).toBe(3 * one)
        const refused = yield* Effect.flip(Registry.send(registry, "d", ev("x")))
        expect(refused).toMatchObject({
          _tag: "PendingBudgetError",
          key: "d",
          maxBytes: 3 * one,
          pendingBytes: 3 * one
        })
        expect(refused.message).toContain(`${3 * one}-byte budget`)
        // Nothing is kept for the refused key, and the budget is unchanged.
        expect(registry.stats()).toMatchObject({ keys: 3, pending: 3, pendingBytes: 3 * one, refusedBudget: 1 })
        // A client taking its events gives their bytes back.
        const a = yield* open(registry, "a")
        yield* a.sink.awaitWrites(1)
        expect(registry.stats().pendingBytes).toBe(2 * one)
        expect(yield* Registry.send(registry, "d", ev("x"))).toBe("pending")
      }))

    it.effect("dropping: the new event is dropped and counted; a terminal event always gets in", () =>
      Effect.gen(function*() {
        const registry = yield* Registry.make({ budget: { maxBytes: 2 * one, strategy: "dropping" } })
        expect(yield* Registry.send(registry, "a", ev("x"))).toBe("pending")
        expect(yield* Registry.send(registry, "b", ev("x"))).toBe("pending")
        expect(yield* Registry.send(registry, "a", ev("y"))).toBe("dropped")
        expect(yield* Registry.send(registry, "c", ev("x"))).toBe("dropped")
        expect(yield* Registry.send(registry, "b", ev("end"), { terminal: "done" })).toBe("pending")
        expect(registry.stats()).toMatchObject({ keys: 2, pending: 3, droppedBudget: 2, refusedBudget: 0 })
        const b = yield* open(registry, "b")
        expect(yield* b.connection.outcome).toMatchObject({ _tag: "Closed", reason: "done" })
        expect(dataOf(b.sink.text())).toEqual(["x", "end", "connection_close:done"])
      }))

    it.effect("a full outbox dropping its oldest event makes room for the new one within the budget", () =>
      Effect.gen(function*() {
        const registry = yield* Registry.make({ pending: { capacity: 2 }, budget: { maxBytes: 2 * one } })
        for (const d of ["1", "2", "3"]) expect(yield* Registry.send(registry, "k", ev(d))).toBe("pending")
        expect(registry.stats()).toMatchObject({ pending: 2, pendingBytes: 2 * one, droppedOverflow: 1 })
        const k = yield* open(registry, "k")
        yield* k.sink.awaitWrites(1)
        expect(dataOf(k.sink.text())).toEqual(["2", "3"])
        expect(registry.stats().pendingBytes).toBe(0)
      }))

    it.effect("expired events and disconnected keys give their bytes back (TestClock)", () =>
      Effect.gen(function*() {
        const registry = yield* Registry.make({ pending: { ttl: "1 minute" }, budget: { maxBytes: 2 * one } })
        yield* Registry.send(registry, "a", ev("x"))
        yield* Registry.send(registry, "b", ev("x"))
        expect(yield* Effect.flip(Registry.send(registry, "c", ev("x")))).toMatchObject({ _tag: "PendingBudgetError" })
        yield* Registry.disconnect(registry, "b", "gone")
        expect(registry.stats().pendingBytes).toBe(one)
        yield* TestClock.adjust("61 seconds")
        expect(yield* Registry.send(registry, "c", ev("x"))).toBe("pending")
        expect(yield* Registry.send(registry, "d", ev("x"))).toBe("pending")
        expect(registry.stats()).toMatchObject({ pendingBytes: 2 * one, droppedExpired: 1 })
      }))

    it.effect("budget: false removes the bound; invalid settings are refused naming the option", () =>
      Effect.gen(function*() {
        const free = yield* Registry.make({ budget: false })
        for (let i = 0; i < 100; i++) yield* Registry.send(free, `k${i}`, ev("x"))
        expect(free.stats().pending).toBe(100)
        const zero = yield* Effect.exit(Registry.make({ budget: { maxBytes: 0 } }))
        expect(String(zero)).toContain("budget.maxBytes")
        const bad = yield* Effect.exit(Registry.make({ budget: { strategy: "sliding" as never } }))
        expect(String(bad)).toContain("budget.strategy")
      }))
  })

  it.effect("waiting events expire after the time-to-live (TestClock)", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.make({ pending: { ttl: "1 minute" } })
      yield* Registry.send(registry, "k", ev("old"))
      yield* TestClock.adjust("30 seconds")
      yield* Registry.send(registry, "k", ev("newer"))
      yield* TestClock.adjust("31 seconds")
      const a = yield* open(registry, "k")
      yield* a.sink.awaitWrites(1)
      expect(dataOf(a.sink.text())).toEqual(["newer"])
      expect(registry.stats().droppedExpired).toBe(1)
    }))

  it.effect("idle keys are forgotten by the sweeper; unknown keys are refused by the lookup", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.make({
        pending: { ttl: "1 minute" },
        exists: (key) => Effect.succeed(key.startsWith("task-"))
      })
      yield* Registry.send(registry, "anything", ev("x"))
      expect(registry.stats().keys).toBe(1)
      yield* TestTime.advance("2 minutes", "15 seconds")
      expect(registry.stats()).toMatchObject({ keys: 0, droppedExpired: 1 })
      expect(yield* Effect.flip(open(registry, "nope"))).toMatchObject({ _tag: "UnknownKeyError", key: "nope" })
      const ok = yield* open(registry, "task-9")
      expect(ok.connection.isOpen()).toBe(true)
      // A key that already has waiting events exists, whatever the lookup says.
      yield* Registry.send(registry, "legacy", ev("hi"))
      const legacy = yield* open(registry, "legacy")
      yield* legacy.sink.awaitWrites(1)
      expect(dataOf(legacy.sink.text())).toEqual(["hi"])
    }))

  it.effect("a slow client: the outbox feeds its mailbox as room frees, in order, and nothing leaks", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const registry = yield* Registry.make({ pending: { ttl: "Infinity" } })
        const sink = yield* TestSink.make({ delay: "10 millis" })
        yield* Registry.connect(registry, "k", { sink: sink.sink, capacity: 2, heartbeat: false })
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => String(i + 1)),
          (d) => Registry.send(registry, "k", ev(d))
        )
        expect(results).toContain("pending")
        yield* TestTime.advance("1 second", "10 millis")
        expect(dataOf(sink.text())).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1)))
        expect(registry.pendingCount("k")).toBe(0)
      })))
      yield* tracker.assertNoLeaks()
    }))

  it.live(
    "sending and connecting at the same moment neither loses nor duplicates an event (seeded interleavings)",
    () =>
      Effect.gen(function*() {
        for (let seed = 1; seed <= 20; seed++) {
          const run = Effect.scoped(Effect.gen(function*() {
            const registry = yield* Registry.make({ pending: { capacity: 1_000, ttl: "Infinity" } })
            const connections: Array<{ connection: Connection.Connection; sink: TestSink.TestSink }> = []
            const sender = Effect.forEach(
              Array.from({ length: 150 }, (_, i) => i + 1),
              (i) => Effect.andThen(Registry.send(registry, "k", ev(String(i))), Effect.yieldNow),
              { discard: true }
            )
            const connector = Effect.forEach([1, 2, 3, 4, 5], () =>
              Effect.gen(function*() {
                yield* Effect.yieldNow
                const sink = yield* TestSink.make()
                const connection = yield* Registry.connect(registry, "k", {
                  sink: sink.sink,
                  capacity: 4,
                  heartbeat: false
                })
                connections.push({ connection, sink })
              }), { discard: true })
            yield* Effect.all([sender, connector], { concurrency: "unbounded" })
            // The last connection stays; the others end once they wrote what they accepted.
            const last = connections.at(-1)!
            yield* Effect.forEach(connections.slice(0, -1), (c) => c.connection.outcome, { discard: true })
            for (let i = 0; i < 1_000 && last.connection.stats().delivered + registry.pendingCount("k") < 1; i++) {
              yield* Effect.yieldNow
            }
            yield* Effect.gen(function*() {
              for (let i = 0; i < 10_000; i++) {
                const seen = connections.flatMap((c) => dataOf(c.sink.text()).filter((d) => /^\d+$/.test(d)))
                if (seen.length >= 150) return
                yield* Effect.yieldNow
              }
            })
            return connections.map((c) => dataOf(c.sink.text()).filter((d) => /^\d+$/.test(d)).map(Number))
          })).pipe(Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed, 0.2)))
          const perConnection = yield* run
          const all = perConnection.flat()
          // Every event exactly once, and each connection got a contiguous, ordered run.
          expect(all).toEqual(Array.from({ length: 150 }, (_, i) => i + 1))
        }
      }),
    60_000
  )
})
