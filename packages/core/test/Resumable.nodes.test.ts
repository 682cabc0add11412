// Several collections sharing one coordinator and one store of logs behave
// as nodes of a cluster: what the Redis implementations do across
// processes, played here in memory, on the test clock.
import { describe, expect, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { Resumable, ResumableCoordinator } from "../src/index.ts"
import { LeakTracker, TestTime } from "../src/testing.ts"
import { range } from "./support/frames.ts"
import { client, nodeLayer, partitionable, read, sharedStore, token } from "./support/resumable.ts"

const lease = 4_000
const names = (n: number) => range(1, n).map((i) => `t${i}`)

const held = (n: number, release: Deferred.Deferred<void>, finalized: { count: number }) => (m: Resumable.Sender) =>
  Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(() => finalized.count++))
    yield* m.sendAll(range(1, n).map(token))
    yield* Deferred.await(release)
  })

/** Two nodes, A and B, in their own scopes; A's coordinator can be cut off. */
const cluster = Effect.gen(function*() {
  const shared = yield* ResumableCoordinator.makeMemory
  const store = sharedStore()
  const gateA = partitionable(shared)
  // A's own scope (a test shuts A down alone), closed with the test's anyway.
  const scopeA = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(scopeA, Exit.void))
  const a = yield* Resumable.make({ node: "a", lease }).pipe(
    Scope.provide(scopeA),
    Effect.provide(nodeLayer(gateA.coordinator, store))
  )
  const b = yield* Resumable.make({ node: "b", lease }).pipe(Effect.provide(nodeLayer(shared, store)))
  return { a, b, cutA: gateA.cut, closeA: Scope.close(scopeA, Exit.void) }
})

describe("Resumable across nodes (shared coordinator and logs, in memory)", () => {
  it.effect("start on A, attach and resume on B: no gap, no duplicate, the end", () =>
    Effect.gen(function*() {
      const { a, b } = yield* cluster
      const release = yield* Deferred.make<void>()
      yield* Resumable.start(a, "s", held(4, release, { count: 0 }))
      const onB = yield* client(b, "s")
      yield* onB.awaitEvents(4)
      const resumed = yield* client(b, "s", { lastEventId: onB.tokenIds()[1]! })
      yield* resumed.awaitEvents(2)
      yield* Deferred.succeed(release, undefined)
      yield* onB.attachment.outcome
      yield* resumed.attachment.outcome
      expect(onB.tokens()).toEqual(names(4))
      expect(resumed.tokens()).toEqual(names(4).slice(2))
      expect([onB.closeReason(), resumed.closeReason()]).toEqual(["completed", "completed"])
      expect(yield* Resumable.status(b, "s")).toEqual({ _tag: "Ended", id: "s", end: { _tag: "Completed" } })
    }))

  it.effect("a start of the same id on B starts nothing and says where it runs", () =>
    Effect.gen(function*() {
      const { a, b } = yield* cluster
      let runs = 0
      const producer = held(1, yield* Deferred.make<void>(), { count: 0 })
      const counted = (m: Resumable.Sender) => Effect.andThen(Effect.sync(() => runs++), producer(m))
      expect(yield* Resumable.start(a, "s", counted)).toMatchObject({ _tag: "Started" })
      expect(yield* Resumable.start(b, "s", counted)).toEqual({
        _tag: "AlreadyStarted",
        id: "s",
        status: { _tag: "Running", id: "s", local: false }
      })
      yield* TestTime.advance("1 second", 100)
      expect(runs).toBe(1)
    }))

  it.effect("stop from B interrupts A's producer (finalizers once); clients on both nodes get stopped", () =>
    Effect.gen(function*() {
      const { a, b } = yield* cluster
      const finalized = { count: 0 }
      yield* Resumable.start(a, "s", held(2, yield* Deferred.make<void>(), finalized))
      const onA = yield* client(a, "s")
      const onB = yield* client(b, "s")
      yield* onB.awaitEvents(2)
      const stopped = yield* Resumable.stop(b, "s")
      expect(stopped).toEqual({
        _tag: "Stopped",
        id: "s",
        end: { _tag: "Stopped", reason: "stopped", detached: false }
      })
      expect(finalized.count).toBe(1)
      yield* onA.attachment.outcome
      yield* onB.attachment.outcome
      expect([onA.closeReason(), onB.closeReason()]).toEqual(["stopped", "stopped"])
      expect(onB.tokens()).toEqual(names(2))
      expect(yield* Resumable.stop(b, "s")).toMatchObject({ _tag: "AlreadyEnded" })
    }))

  it.effect("A frozen: clients on B get producer_lost within the lease; A gives its producer up", () =>
    Effect.gen(function*() {
      const { a, b, cutA } = yield* cluster
      const finalized = { count: 0 }
      yield* Resumable.start(a, "s", held(3, yield* Deferred.make<void>(), finalized))
      const onB = yield* client(b, "s")
      yield* onB.awaitEvents(3)
      // Let a few renewals happen first, so the lease is at its longest.
      yield* TestTime.advance(lease, 100)
      cutA()
      const cutAt = yield* Clock.currentTimeMillis
      let endedAt: number | undefined
      for (let i = 0; i < 200 && endedAt === undefined; i++) {
        yield* TestTime.advance(50)
        if (onB.closeReason() !== undefined) endedAt = yield* Clock.currentTimeMillis
      }
      expect(onB.tokens()).toEqual(names(3))
      expect(onB.closeReason()).toBe("producer_lost")
      console.log(`producer_lost on B ${endedAt! - cutAt} ms after A froze (lease ${lease} ms)`)
      expect(endedAt! - cutAt).toBeLessThanOrEqual(lease)
      // A could not renew for lease/2: it stopped its producer by itself, and
      // (its coordinator silent) recorded the end after a lease of retries.
      yield* TestTime.advance(2 * lease, 100)
      expect(finalized.count).toBe(1)
      expect(a.stats()).toMatchObject({ running: 0, ended: { producer_lost: 1 } })
      expect(yield* Resumable.status(b, "s")).toEqual({ _tag: "Ended", id: "s", end: { _tag: "ProducerLost" } })
    }))

  it.effect("A shuts down: clients on B get producer_lost at once, not a lease later", () =>
    Effect.gen(function*() {
      const { a, b, closeA } = yield* cluster
      const finalized = { count: 0 }
      yield* Resumable.start(a, "s", held(2, yield* Deferred.make<void>(), finalized))
      const onB = yield* client(b, "s")
      yield* onB.awaitEvents(2)
      yield* closeA
      yield* TestTime.settle()
      yield* onB.attachment.outcome
      expect(onB.closeReason()).toBe("producer_lost")
      expect(finalized.count).toBe(1)
    }))

  it.effect("stop from B when A is frozen: B ends the stream as stopped once A's lease has run out", () =>
    Effect.gen(function*() {
      const { a, b, cutA } = yield* cluster
      yield* Resumable.start(a, "s", held(1, yield* Deferred.make<void>(), { count: 0 }))
      const onB = yield* client(b, "s")
      yield* onB.awaitEvents(1)
      cutA()
      const stopping = yield* Effect.forkChild(Resumable.stop(b, "s"))
      yield* TestTime.advance(2 * lease, 50)
      expect(yield* Fiber.join(stopping)).toMatchObject({ _tag: "Stopped" })
      yield* onB.attachment.outcome
      expect(onB.closeReason()).toBe("stopped")
    }))

  it.effect("the detach policy counts clients on every node", () =>
    Effect.gen(function*() {
      const { a, b } = yield* cluster
      const finalized = { count: 0 }
      yield* Resumable.start(a, "s", held(1, yield* Deferred.make<void>(), finalized), { detachGrace: "2 seconds" })
      const scope = yield* Scope.make()
      const onB = yield* Scope.provide(client(b, "s"), scope)
      yield* onB.awaitEvents(1)
      yield* TestTime.advance("10 seconds", 100)
      expect(yield* Resumable.status(a, "s")).toMatchObject({ _tag: "Running" })
      yield* Scope.close(scope, Exit.void)
      const left = yield* Clock.currentTimeMillis
      yield* TestTime.advance("1900 millis", 100)
      expect(yield* Resumable.status(a, "s")).toMatchObject({ _tag: "Running" })
      yield* TestTime.advance("2 seconds", 100)
      expect(yield* Resumable.status(a, "s")).toMatchObject({ _tag: "Ended", end: { _tag: "Stopped", detached: true } })
      expect(finalized.count).toBe(1)
      // B touched every grace/4: the owner stopped within a touch interval of the grace.
      expect(yield* Clock.currentTimeMillis).toBeLessThanOrEqual(left + 3_900)
      expect((yield* read(b, "s")).closeReason()).toBe("stopped")
    }))

  it.effect("nodes and their clients leave no fiber behind (the watcher of a remote record included)", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const { a, b } = yield* cluster
        yield* Resumable.start(a, "s", held(2, yield* Deferred.make<void>(), { count: 0 }))
        const onB = yield* client(b, "s")
        yield* onB.awaitEvents(2)
        yield* TestTime.advance(lease, 100)
      })))
      yield* tracker.assertNoLeaks()
    }))
})
