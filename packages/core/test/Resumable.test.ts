import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Effect, Exit, Metric, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Resumable, SseEvent } from "../src/index.ts"
import { LeakTracker, TestTime } from "../src/testing.ts"
import { range } from "./support/frames.ts"
import { client, read, token } from "./support/resumable.ts"

const tokens = (n: number) => Stream.fromIterable(range(1, n)).pipe(Stream.map(token))
const names = (n: number) => range(1, n).map((i) => `t${i}`)

/** A producer that sends `n` tokens, then waits for `release` (a running stream), counting its finalizers. */
const held = (n: number, release: Deferred.Deferred<void>, finalized: { count: number }) => (m: Resumable.Sender) =>
  Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(() => finalized.count++))
    yield* m.sendAll(range(1, n).map(token))
    yield* Deferred.await(release)
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit)
    ? Cause.findErrorOption(exit.cause).pipe((o) => o._tag === "Some" ? o.value : undefined)
    : undefined

describe("Resumable: start", () => {
  it.effect("is idempotent: a second start of a running or retained id starts nothing and says so", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const release = yield* Deferred.make<void>()
      let runs = 0
      const producer = (m: Resumable.Sender) =>
        Effect.andThen(Effect.sync(() => runs++), held(1, release, { count: 0 })(m))
      expect(yield* Resumable.start(rs, "a", producer)).toEqual({ _tag: "Started", id: "a" })
      expect(yield* Resumable.start(rs, "a", producer)).toEqual({
        _tag: "AlreadyStarted",
        id: "a",
        status: { _tag: "Running", id: "a", local: true }
      })
      yield* Deferred.succeed(release, undefined)
      expect((yield* read(rs, "a")).closeReason()).toBe("completed")
      expect(yield* Resumable.start(rs, "a", producer)).toEqual({
        _tag: "AlreadyStarted",
        id: "a",
        status: { _tag: "Ended", id: "a", end: { _tag: "Completed" } }
      })
      expect(runs).toBe(1)
      expect(rs.stats()).toMatchObject({ running: 0, retained: 1, started: 1, ended: { completed: 1 } })
    }))

  it.effect("refuses ids that cannot name a stream, with a typed error", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      for (const id of ["", "a\nb", "x".repeat(257), "\ud800"]) {
        const started = yield* Effect.exit(Resumable.start(rs, id, tokens(1)))
        expect(failureOf(started)).toMatchObject({ _tag: "InvalidStreamIdError" })
        const attached = yield* Effect.exit(Effect.scoped(client(rs, id)))
        expect(failureOf(attached)).toMatchObject({ _tag: "InvalidStreamIdError" })
        expect(failureOf(yield* Effect.exit(Resumable.stop(rs, id)))).toMatchObject({ _tag: "InvalidStreamIdError" })
      }
    }))

  it.effect("options that cannot work are a defect naming the option", () =>
    Effect.gen(function*() {
      const made = yield* Effect.exit(Resumable.make({ maxStreams: 0 }))
      expect(Exit.isFailure(made) && Cause.pretty(made.cause)).toContain("maxStreams")
      const rs = yield* Resumable.make()
      const started = yield* Effect.exit(Resumable.start(rs, "a", tokens(1), { maxEvents: Number.NaN }))
      expect(Exit.isFailure(started) && Cause.pretty(started.cause)).toContain("maxEvents")
      const lifetime = yield* Effect.exit(Resumable.start(rs, "b", tokens(1), { maxLifetime: "soon" as never }))
      expect(Exit.isFailure(lifetime) && Cause.pretty(lifetime.cause)).toContain("maxLifetime")
    }))
})

describe("Resumable: attach", () => {
  it.effect("without an id from the beginning, with one after it, then live events, then the end", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const release = yield* Deferred.make<void>()
      const go = yield* Deferred.make<void>()
      yield* Resumable.start(rs, "a", (m) =>
        Effect.gen(function*() {
          yield* m.sendAll(range(1, 3).map(token))
          yield* Deferred.await(go)
          yield* m.sendAll(range(4, 6).map(token))
          yield* Deferred.await(release)
        }))
      const first = yield* client(rs, "a")
      yield* first.awaitEvents(3)
      expect(first.attachment.start).toEqual({ _tag: "FromStart" })
      const third = first.tokenIds()[2]!
      const second = yield* client(rs, "a", { lastEventId: first.tokenIds()[0]! })
      yield* second.awaitEvents(2)
      yield* Deferred.succeed(go, undefined)
      yield* first.awaitEvents(6)
      yield* second.awaitEvents(5)
      yield* Deferred.succeed(release, undefined)
      yield* first.attachment.outcome
      yield* second.attachment.outcome
      expect(first.tokens()).toEqual(names(6))
      expect(first.closeReason()).toBe("completed")
      expect(second.attachment.start).toEqual({ _tag: "Resumed", lastEventId: first.tokenIds()[0] })
      expect(second.tokens()).toEqual(names(6).slice(1))
      expect(second.tokenIds()[1]).toBe(third)
      expect(second.closeReason()).toBe("completed")
    }))

  it.effect("after the end, within the retention: the whole remaining record and the end at once", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      yield* Resumable.start(rs, "a", tokens(50))
      const all = yield* read(rs, "a")
      expect(all.tokens()).toEqual(names(50))
      // No time passes: everything is there already.
      const rest = yield* read(rs, "a", { lastEventId: all.tokenIds()[19]! })
      expect(rest.tokens()).toEqual(names(50).slice(20))
      expect(rest.closeReason()).toBe("completed")
      const atEnd = yield* read(rs, "a", { lastEventId: all.tokenIds()[49]! })
      expect(atEnd.tokens()).toEqual([])
      expect(atEnd.closeReason()).toBe("completed")
    }))

  it.effect("an id the record cannot resume gets replay_gap with an empty id, then the whole record", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      yield* Resumable.start(rs, "a", tokens(3))
      for (const [lastEventId, reason] of [["nope", "unknown"], ["zz9-2", "restarted"]] as const) {
        const c = yield* read(rs, "a", { lastEventId })
        expect(c.attachment.start).toEqual({ _tag: "Gap", lastEventId, reason })
        expect(c.events()[0]).toEqual({ id: "", event: "replay_gap", data: JSON.stringify({ reason, lastEventId }) })
        expect(c.tokens()).toEqual(names(3))
      }
    }))

  it.effect("an unknown id fails with UnknownStreamError", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const exit = yield* Effect.exit(read(rs, "nobody"))
      expect(failureOf(exit)).toMatchObject({ _tag: "UnknownStreamError", id: "nobody" })
      expect(failureOf(yield* Effect.exit(Resumable.status(rs, "nobody")))).toMatchObject({
        _tag: "UnknownStreamError"
      })
      expect(failureOf(yield* Effect.exit(Resumable.stop(rs, "nobody")))).toMatchObject({ _tag: "UnknownStreamError" })
    }))

  it.effect("a client going away does not stop the producer", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const release = yield* Deferred.make<void>()
      const finalized = { count: 0 }
      yield* Resumable.start(rs, "a", held(2, release, finalized))
      yield* Effect.scoped(Effect.flatMap(client(rs, "a"), (c) => c.awaitEvents(2)))
      yield* TestTime.advance("1 minute", "1 second")
      expect(yield* Resumable.status(rs, "a")).toEqual({ _tag: "Running", id: "a", local: true })
      expect(finalized.count).toBe(0)
      yield* Deferred.succeed(release, undefined)
      expect((yield* read(rs, "a")).tokens()).toEqual(names(2))
      expect(finalized.count).toBe(1)
    }))
})

describe("Resumable: ends", () => {
  it.effect("failed: the events, then an error event with a safe message, then the close", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      yield* Resumable.start(rs, "a", Stream.concat(tokens(2), Stream.fail("secret stack")))
      yield* Resumable.start(rs, "b", Stream.concat(tokens(1), Stream.fail("x")), {
        failureMessage: () => "The model is unavailable"
      })
      yield* Resumable.start(rs, "c", Stream.fail("x"), {
        failureMessage: () => {
          throw new Error("renderer bug")
        }
      })
      const a = yield* read(rs, "a")
      expect(a.tokens()).toEqual(names(2))
      expect(a.events().slice(2)).toEqual([
        { event: "error", data: JSON.stringify({ message: "The event stream failed" }) },
        { event: "connection_close", data: "failed" }
      ])
      expect(a.text()).not.toContain("secret")
      expect((yield* read(rs, "b")).events().slice(1, 2)).toEqual([
        { event: "error", data: JSON.stringify({ message: "The model is unavailable" }) }
      ])
      expect((yield* read(rs, "c")).events()[0]).toEqual({
        event: "error",
        data: JSON.stringify({ message: "The event stream failed" })
      })
    }))

  it.effect("stopped: the producer is interrupted, its finalizers run once, attached clients get the end", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const release = yield* Deferred.make<void>()
      const finalized = { count: 0 }
      yield* Resumable.start(rs, "a", held(3, release, finalized))
      const c = yield* client(rs, "a")
      yield* c.awaitEvents(3)
      const stopped = yield* Resumable.stop(rs, "a")
      expect(stopped).toEqual({
        _tag: "Stopped",
        id: "a",
        end: { _tag: "Stopped", reason: "stopped", detached: false }
      })
      expect(finalized.count).toBe(1)
      yield* c.attachment.outcome
      expect(c.tokens()).toEqual(names(3))
      expect(c.closeReason()).toBe("stopped")
      expect(yield* Resumable.stop(rs, "a")).toMatchObject({ _tag: "AlreadyEnded", end: { _tag: "Stopped" } })
      expect(finalized.count).toBe(1)
      // A stop's own reason reaches the clients; a reason that cannot be one is refused.
      yield* Resumable.start(rs, "b", held(0, release, finalized))
      expect(failureOf(yield* Effect.exit(Resumable.stop(rs, "b", "Bad Reason")))).toMatchObject({
        _tag: "InvalidStopReasonError"
      })
      yield* Resumable.stop(rs, "b", "cancelled_by_user")
      expect((yield* read(rs, "b")).closeReason()).toBe("cancelled_by_user")
    }))

  it.effect("a stop right after the start ends the stream before the producer ever runs", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      let ran = false
      yield* Resumable.start(rs, "a", () => Effect.sync(() => ran = true))
      expect(yield* Resumable.stop(rs, "a")).toMatchObject({ _tag: "Stopped" })
      expect(ran).toBe(false)
      expect((yield* read(rs, "a")).closeReason()).toBe("stopped")
    }))

  it.effect("expired: the producer is interrupted at its maximum lifetime", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const finalized = { count: 0 }
      yield* Resumable.start(rs, "a", held(1, yield* Deferred.make<void>(), finalized), { maxLifetime: "10 seconds" })
      const c = yield* client(rs, "a")
      yield* TestTime.advance("9999 millis", "100 millis")
      expect(yield* Resumable.status(rs, "a")).toMatchObject({ _tag: "Running" })
      yield* TestTime.advance("2 millis")
      yield* c.attachment.outcome
      expect(c.closeReason()).toBe("expired")
      expect(finalized.count).toBe(1)
      expect(yield* Resumable.status(rs, "a")).toEqual({ _tag: "Ended", id: "a", end: { _tag: "Expired" } })
    }))

  it.effect("producer_lost: the collection closes (the node shuts down) under a running producer", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const rs = yield* Scope.provide(Resumable.make(), scope)
      const finalized = { count: 0 }
      yield* Resumable.start(rs, "a", held(2, yield* Deferred.make<void>(), finalized))
      const c = yield* client(rs, "a")
      yield* c.awaitEvents(2)
      yield* Scope.close(scope, Exit.void)
      yield* c.attachment.outcome
      expect(c.tokens()).toEqual(names(2))
      expect(c.closeReason()).toBe("producer_lost")
      expect(finalized.count).toBe(1)
      const refused = yield* Effect.exit(Resumable.start(rs, "b", tokens(1)))
      expect(failureOf(refused)).toMatchObject({ _tag: "CoordinatorError", operation: "claim" })
    }))
})

describe("Resumable: bounds", () => {
  it.effect("maxStreams: a start beyond it fails with StreamLimitError; room comes back when one ends", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make({ maxStreams: 2 })
      const release = yield* Deferred.make<void>()
      yield* Resumable.start(rs, "a", held(0, release, { count: 0 }))
      yield* Resumable.start(rs, "b", tokens(1))
      const refused = yield* Effect.exit(Resumable.start(rs, "c", tokens(1)))
      expect(failureOf(refused)).toMatchObject({ _tag: "StreamLimitError", maxStreams: 2 })
      expect((failureOf(refused) as Error).message).toContain("maxStreams")
      // A retried start of a known id is not a new stream.
      expect(yield* Resumable.start(rs, "a", tokens(1))).toMatchObject({ _tag: "AlreadyStarted" })
      yield* read(rs, "b")
      expect(yield* Resumable.start(rs, "c", tokens(1))).toMatchObject({ _tag: "Started" })
    }))

  it.effect("maxEvents and maxBytes: the stream ends as failed, naming the bound; nothing beyond is recorded", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const finalized = { count: 0 }
      const never = yield* Deferred.make<void>()
      yield* Resumable.start(rs, "events", held(5, never, finalized), { maxEvents: 3 })
      yield* Resumable.start(rs, "bytes", held(5, never, finalized), { maxBytes: 40 })
      const events = yield* read(rs, "events")
      expect(events.tokens()).toEqual(names(3))
      expect(events.events().slice(3)).toEqual([
        { event: "error", data: JSON.stringify({ message: "the stream reached its limit of 3 events" }) },
        { event: "connection_close", data: "failed" }
      ])
      // "event: token\ndata: t1\n\n" is 23 bytes: one fits in 40, two do not.
      const bytes = yield* read(rs, "bytes")
      expect(bytes.tokens()).toEqual(names(1))
      expect(bytes.events()[1]?.data).toContain("limit of 40 bytes")
      expect(finalized.count).toBe(2)
    }))

  it.effect("retention: the record is there until its time is up, then deleted", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      yield* Resumable.start(rs, "a", tokens(2), { retention: "1 minute" })
      yield* read(rs, "a")
      yield* TestTime.advance("59 seconds", "1 second")
      expect((yield* read(rs, "a")).tokens()).toEqual(names(2))
      yield* TestTime.advance("1 second", "100 millis")
      expect(failureOf(yield* Effect.exit(read(rs, "a")))).toMatchObject({ _tag: "UnknownStreamError" })
      expect(rs.stats()).toMatchObject({ retained: 0 })
      // The id is free again: a new start is a new stream.
      expect(yield* Resumable.start(rs, "a", tokens(1))).toMatchObject({ _tag: "Started" })
    }))

  it.effect("maxRetained: beyond it, the oldest ended record is deleted first", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make({ maxRetained: 1 })
      yield* Resumable.start(rs, "a", tokens(1))
      yield* read(rs, "a")
      yield* TestClock.adjust("1 millis")
      yield* Resumable.start(rs, "b", tokens(1))
      yield* read(rs, "b")
      expect(failureOf(yield* Effect.exit(read(rs, "a")))).toMatchObject({ _tag: "UnknownStreamError" })
      expect((yield* read(rs, "b")).tokens()).toEqual(names(1))
    }))
})

describe("Resumable: the detach policy", () => {
  it.effect("stops the producer once no client has been attached for the grace period, not before", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const finalized = { count: 0 }
      yield* Resumable.start(rs, "a", held(1, yield* Deferred.make<void>(), finalized), { detachGrace: "5 seconds" })
      const scope = yield* Scope.make()
      const c = yield* Scope.provide(client(rs, "a"), scope)
      yield* c.awaitEvents(1)
      // Attached for longer than the grace: nothing happens.
      yield* TestTime.advance("20 seconds", "250 millis")
      expect(yield* Resumable.status(rs, "a")).toMatchObject({ _tag: "Running" })
      yield* Scope.close(scope, Exit.void)
      const left = yield* Clock.currentTimeMillis
      yield* TestTime.advance("4999 millis", "100 millis")
      expect(yield* Resumable.status(rs, "a")).toMatchObject({ _tag: "Running" })
      expect(finalized.count).toBe(0)
      yield* TestTime.advance("2 millis")
      expect(yield* Resumable.status(rs, "a")).toEqual({
        _tag: "Ended",
        id: "a",
        end: { _tag: "Stopped", reason: "stopped", detached: true }
      })
      expect(finalized.count).toBe(1)
      expect((yield* Clock.currentTimeMillis) - left).toBeLessThanOrEqual(5_001)
      expect((yield* read(rs, "a")).closeReason()).toBe("stopped")
    }))

  it.effect("the start counts as a client leaving: a stream nobody attaches to stops after the grace", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      yield* Resumable.start(rs, "a", held(0, yield* Deferred.make<void>(), { count: 0 }), { detachGrace: "3 seconds" })
      yield* TestTime.advance("2999 millis", "100 millis")
      expect(yield* Resumable.status(rs, "a")).toMatchObject({ _tag: "Running" })
      yield* TestTime.advance("2 millis")
      expect(yield* Resumable.status(rs, "a")).toMatchObject({ _tag: "Ended", end: { _tag: "Stopped" } })
    }))
})

describe("Resumable: producers", () => {
  it.effect("an event with its own id or the reserved type is refused with InvalidEventError; nothing is recorded", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const errors: Array<string> = []
      yield* Resumable.start(rs, "a", (m) =>
        Effect.gen(function*() {
          for (
            const bad of [
              SseEvent.make({ id: "mine", data: "x" }),
              SseEvent.make({ event: "sluice_end", data: "{}" }),
              SseEvent.make({ event: "a\nb", data: "x" })
            ]
          ) {
            const sent = yield* Effect.flip(m.send(bad))
            errors.push(`${sent._tag}:${sent.field}`)
          }
          yield* m.send(token(1))
        }))
      expect((yield* read(rs, "a")).tokens()).toEqual(names(1))
      expect(errors).toEqual(["InvalidEventError:id", "InvalidEventError:event", "InvalidEventError:event"])
    }))

  it.effect("a producer runs with the services of the caller of start, in a scope of its own", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const finalized = { count: 0 }
      const caller = yield* Scope.make()
      yield* Scope.provide(
        Resumable.start(rs, "a", (m) =>
          Effect.gen(function*() {
            yield* Effect.addFinalizer(() => Effect.sync(() => finalized.count++))
            yield* m.send(token(1))
          })),
        caller
      )
      yield* read(rs, "a")
      expect(finalized.count).toBe(1)
      yield* Scope.close(caller, Exit.void)
      expect(finalized.count).toBe(1)
    }))
})

describe("Resumable: metrics", () => {
  it.effect("started, active, attached, ended by reason", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const release = yield* Deferred.make<void>()
      yield* Resumable.start(rs, "a", tokens(1))
      yield* Resumable.start(rs, "a", tokens(1))
      yield* Resumable.start(rs, "b", held(0, release, { count: 0 }))
      yield* Resumable.start(rs, "c", Stream.fail("x"))
      yield* read(rs, "a")
      yield* read(rs, "c")
      const c = yield* client(rs, "b")
      const snapshot = yield* Metric.snapshot
      const value = (name: string, attribute?: readonly [string, string]) =>
        snapshot.find((m) =>
          m.id === name && (attribute === undefined || m.attributes?.[attribute[0]] === attribute[1])
        )?.state
      expect(value("sluice_resumable_started_total")).toMatchObject({ count: 3 })
      expect(value("sluice_resumable_starts_existing_total")).toMatchObject({ count: 1 })
      expect(value("sluice_resumable_active")).toMatchObject({ value: 1 })
      expect(value("sluice_resumable_attached")).toMatchObject({ value: 1 })
      expect(value("sluice_resumable_ended_total", ["reason", "completed"])).toMatchObject({ count: 1 })
      expect(value("sluice_resumable_ended_total", ["reason", "failed"])).toMatchObject({ count: 1 })
      yield* Resumable.stop(rs, "b")
      yield* c.attachment.outcome
      const after = yield* Metric.snapshot
      expect(after.find((m) => m.id === "sluice_resumable_attached")?.state).toMatchObject({ value: 0 })
      expect(after.find((m) => m.id === "sluice_resumable_active")?.state).toMatchObject({ value: 0 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("Resumable: fibers", () => {
  it.effect("closing the collection and the clients' scopes leaves no fiber behind", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const finalized = { count: 0 }
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const rs = yield* Resumable.make({ lease: "2 seconds" })
        const never = yield* Deferred.make<void>()
        yield* Resumable.start(rs, "done", tokens(5))
        yield* Resumable.start(rs, "running", held(2, never, finalized), { detachGrace: "1 minute" })
        yield* Resumable.start(rs, "stopped", held(2, never, finalized))
        yield* Effect.scoped(Effect.flatMap(client(rs, "stopped"), (c) => c.awaitEvents(2)))
        yield* Resumable.stop(rs, "stopped")
        yield* read(rs, "done")
        const attached = yield* client(rs, "running")
        yield* attached.awaitEvents(2)
        yield* TestTime.advance("5 seconds", "500 millis")
        expect(tracker.live()).toBeGreaterThan(0)
      })))
      expect(finalized.count).toBe(2)
      yield* tracker.assertNoLeaks()
    }))
})
