// Attaches racing the producer's events and its end, concurrent starts, and
// stops during replay: every order at event boundaries, then seeded
// interleavings (SeededScheduler with random preemption) for the orders
// inside them.
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Latch, Queue, Scheduler, Scope } from "effect"
import { Resumable, ResumableCoordinator } from "../src/index.ts"
import { SeededScheduler, TestTime } from "../src/testing.ts"
import { frameSink, range } from "./support/frames.ts"
import { client, nodeLayer, read, sharedStore, token } from "./support/resumable.ts"

const names = (n: number) => range(1, n).map((i) => `t${i}`)

/** A small seeded generator for the test's own choices (the scheduler has its own). */
const choices = (seed: number) => {
  let state = seed | 0
  return (n: number): number => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

const seeded = <A, E, R>(seed: number, effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Scheduler.Scheduler, new SeededScheduler(seed, 0.25))

describe("Resumable: attach racing events and the end", () => {
  it.effect("every attach position and every lastEventId, at event boundaries", () =>
    Effect.gen(function*() {
      const n = 4
      let cases = 0
      // p: events recorded before the attach (n + 1: after the end); j: index of the client's last event.
      for (let p = 0; p <= n + 1; p++) {
        for (let j = -1; j < Math.min(p, n); j++) {
          yield* Effect.scoped(Effect.gen(function*() {
            const rs = yield* Resumable.make()
            const commands = yield* Queue.unbounded<"send" | "end">()
            yield* Resumable.start(rs, "s", (m) =>
              Effect.gen(function*() {
                for (let i = 1;; i++) {
                  if ((yield* Queue.take(commands)) === "end") return
                  yield* m.send(token(i))
                }
              }))
            const reference = yield* client(rs, "s")
            const step = (k: number) =>
              k < n
                ? Effect.andThen(Queue.offer(commands, "send"), reference.awaitEvents(k + 1))
                : Effect.andThen(Queue.offer(commands, "end"), reference.attachment.outcome)
            for (let k = 0; k < p; k++) yield* step(k)
            const lastEventId = j >= 0 ? reference.tokenIds()[j]! : undefined
            const c = yield* client(rs, "s", { lastEventId })
            for (let k = p; k <= n; k++) yield* step(k)
            yield* c.attachment.outcome
            expect(c.tokens()).toEqual(names(n).slice(j + 1))
            expect(c.closeReason()).toBe("completed")
            expect(reference.tokens()).toEqual(names(n))
            cases++
          }))
        }
      }
      expect(cases).toBe(20)
    }))

  it.effect(
    "seeded interleavings: clients attaching and resuming at random points, ends by completion or stop",
    () =>
      Effect.gen(function*() {
        const runs = 150
        for (let seed = 1; seed <= runs; seed++) {
          const pick = choices(seed)
          const n = 20 + pick(20)
          // 0: the producer waits to be stopped; 1: a stop races its completion; 2: it completes.
          const mode = pick(3)
          yield* seeded(
            seed,
            Effect.scoped(Effect.gen(function*() {
              const rs = yield* Resumable.make()
              const never = yield* Deferred.make<void>()
              yield* Resumable.start(rs, "s", (m) =>
                Effect.gen(function*() {
                  for (let i = 1; i <= n; i++) {
                    yield* m.send(token(i))
                    if (pick(3) === 0) yield* Effect.yieldNow
                  }
                  if (mode === 0) yield* Deferred.await(never)
                }))
              const first = yield* client(rs, "s", { capacity: 1 + pick(8) })
              const second = yield* Effect.forkChild(Effect.gen(function*() {
                for (let k = pick(40); k > 0; k--) yield* Effect.yieldNow
                const seen = first.tokenIds()
                const at = seen.length === 0 ? -1 : pick(seen.length + 1) - 1
                const c = yield* client(rs, "s", at < 0 ? {} : { lastEventId: seen[at]! })
                yield* c.attachment.outcome
                return { c, at }
              }))
              let stopped: Resumable.Stopped | undefined
              if (mode !== 2) {
                for (let k = pick(60); k > 0; k--) yield* Effect.yieldNow
                stopped = yield* Resumable.stop(rs, "s")
              }
              yield* first.attachment.outcome
              const { at, c } = yield* Fiber.join(second)
              const recorded = first.tokens().length
              const reason = first.closeReason()
              expect(first.tokens()).toEqual(names(recorded))
              expect(["stopped", "completed"]).toContain(reason)
              if (reason === "completed") expect(recorded).toBe(n)
              if (mode === 0) expect(reason).toBe("stopped")
              if (mode === 2) expect(reason).toBe("completed")
              // The stop says what happened: it ended the stream, or the stream had completed.
              if (stopped !== undefined) expect(stopped._tag === "Stopped" ? "stopped" : "completed").toBe(reason)
              expect(c.tokens()).toEqual(names(recorded).slice(at + 1))
              const late = yield* read(rs, "s")
              expect(late.tokens()).toEqual(names(recorded))
              expect([c.closeReason(), late.closeReason()]).toEqual([reason, reason])
            }))
          )
        }
      }),
    60_000
  )
})

describe("Resumable: concurrent starts", () => {
  it.effect("one producer, one Started, under seeded interleavings (one node, and two)", () =>
    Effect.gen(function*() {
      for (let seed = 1; seed <= 60; seed++) {
        yield* seeded(
          seed,
          Effect.scoped(Effect.gen(function*() {
            const coordinator = yield* ResumableCoordinator.makeMemory
            const layer = nodeLayer(coordinator, sharedStore())
            const a = yield* Effect.provide(Resumable.make({ node: "a" }), layer)
            const b = yield* Effect.provide(Resumable.make({ node: "b" }), layer)
            let runs = 0
            const producer = (m: Resumable.Sender) => Effect.andThen(Effect.sync(() => runs++), m.send(token(1)))
            const nodes = seed % 2 === 0 ? [a, a, a, a, a, a] : [a, b, a, b, b, a]
            const results = yield* Effect.all(nodes.map((rs) => Resumable.start(rs, "s", producer)), {
              concurrency: "unbounded"
            })
            yield* TestTime.settle(100)
            expect(results.filter((r) => r._tag === "Started")).toHaveLength(1)
            expect(runs).toBe(1)
            const onB = yield* read(b, "s")
            expect(onB.tokens()).toEqual(names(1))
          }))
        )
      }
    }), 60_000)
})

describe("Resumable: stop during replay", () => {
  it.effect("a client in the middle of a replay gets every recorded event, then stopped", () =>
    Effect.gen(function*() {
      const rs = yield* Resumable.make()
      const finalized = { count: 0 }
      const never = yield* Deferred.make<void>()
      yield* Resumable.start(rs, "s", (m) =>
        Effect.gen(function*() {
          yield* Effect.addFinalizer(() => Effect.sync(() => finalized.count++))
          yield* m.sendAll(range(1, 300).map(token))
          yield* Deferred.await(never)
        }))
      // A slow client: its writes wait for the latch.
      const hold = yield* Latch.make(true)
      const recorder = frameSink({ hold })
      const scope = yield* Scope.make()
      const c = yield* Scope.provide(client(rs, "s", { recorder, capacity: 4 }), scope)
      yield* recorder.awaitEvents(40)
      yield* hold.close
      expect(c.tokens().length).toBeLessThan(300)
      const stopped = yield* Resumable.stop(rs, "s")
      expect(stopped._tag).toBe("Stopped")
      expect(finalized.count).toBe(1)
      yield* hold.open
      yield* c.attachment.outcome
      expect(c.tokens()).toEqual(names(300))
      expect(c.closeReason()).toBe("stopped")
      yield* Scope.close(scope, Exit.void)
    }))
})
