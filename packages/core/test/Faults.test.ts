import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Effect, Exit, Fiber, Queue, Stream } from "effect"
import { Bubble, Faults, Race } from "../src/testing.ts"

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.exit(Stream.runCollect(stream))
const source = Stream.make(1, 2, 3, 4, 5)

describe("Faults.stream", () => {
  it.effect("drop, duplicate and fail at the k-th element", () =>
    Effect.gen(function*() {
      expect(yield* Stream.runCollect(Faults.stream(source, Faults.drop(3)))).toEqual([1, 2, 4, 5])
      expect(yield* Stream.runCollect(Faults.stream(source, Faults.duplicate(2)))).toEqual([1, 2, 2, 3, 4, 5])
      const failed = yield* collect(Faults.stream(source, Faults.fail(4)))
      expect(Exit.isFailure(failed) && Cause.findErrorOption(failed.cause)).toMatchObject({
        value: { _tag: "FaultError", at: 4 }
      })
    }))

  it.effect("interrupt at the k-th element interrupts the fiber running the stream", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      const exit = yield* Effect.exit(
        Stream.runForEach(Faults.stream(source, Faults.interrupt(3)), (n) => Effect.sync(() => seen.push(n)))
      )
      expect(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)).toBe(true)
      expect(seen).toEqual([1, 2])
    }))

  it.effect("stall holds the k-th element on the clock (for ever without a duration)", () =>
    Effect.gen(function*() {
      const timed = Faults.stream(source, Faults.stall(2, "5 seconds")).pipe(
        Stream.mapEffect((n) => Effect.map(Clock.currentTimeMillis, (t) => `${n}@${t}`))
      )
      expect(yield* Bubble.run(Stream.runCollect(timed))).toEqual(["1@0", "2@5000", "3@5000", "4@5000", "5@5000"])
      // Stalled for ever: a consumer without a timeout is stuck, and the bubble says so.
      const stuck = yield* Effect.flip(Bubble.run(Stream.runCollect(Faults.stream(source, Faults.stall(2)))))
      expect(stuck._tag).toBe("DeadlockError")
    }))

  it.effect("a range is drawn from the run's seed: explored across runs, the same on replay", () =>
    Effect.gen(function*() {
      const program = Stream.runCollect(Faults.stream(source, Faults.drop({ between: [1, 5] })))
      const dropped = new Set<number>()
      yield* Race.check(program, {
        runs: 40,
        invariant: (kept) => {
          dropped.add([1, 2, 3, 4, 5].find((n) => !(kept as ReadonlyArray<number>).includes(n))!)
        }
      })
      expect([...dropped].toSorted()).toEqual([1, 2, 3, 4, 5])
      const once = yield* Bubble.run(program, { seed: 11 })
      expect(yield* Bubble.run(program, { seed: 11 })).toEqual(once)
    }))

  it("positions that cannot exist are refused", () => {
    expect(() => Faults.drop(0)).toThrow(/invalid at/)
    expect(() => Faults.fail({ between: [3, 2] })).toThrow(/invalid at.between/)
  })
})

describe("Faults.queue", () => {
  it.effect("the k-th offer is dropped, duplicated or failed", () =>
    Effect.gen(function*() {
      const offerAll = (fault: Faults.Fault) =>
        Effect.gen(function*() {
          const faulty = yield* Faults.queue(yield* Queue.unbounded<number>(), fault)
          for (const n of [1, 2, 3]) yield* faulty.offer(n)
          return yield* Queue.clear(faulty.queue)
        })
      expect(yield* offerAll(Faults.drop(2))).toEqual([1, 3])
      expect(yield* offerAll(Faults.duplicate(2))).toEqual([1, 2, 2, 3])
      expect((yield* Effect.flip(offerAll(Faults.fail(3))))._tag).toBe("FaultError")
    }))

  it.effect("on the taking side: the k-th take loses an element or sees one twice", () =>
    Effect.gen(function*() {
      const takeThree = (fault: Faults.Fault) =>
        Effect.gen(function*() {
          const queue = yield* Queue.unbounded<number>()
          yield* Queue.offerAll(queue, [1, 2, 3, 4])
          const faulty = yield* Faults.queue(queue, fault, { side: "take" })
          return [yield* faulty.take, yield* faulty.take, yield* faulty.take]
        })
      expect(yield* takeThree(Faults.drop(2))).toEqual([1, 3, 4])
      expect(yield* takeThree(Faults.duplicate(1))).toEqual([1, 1, 2])
    }))

  it.effect("interrupt at the k-th offer interrupts the producer: its finalizer runs once", () =>
    Effect.gen(function*() {
      let finalized = 0
      const faulty = yield* Faults.queue(yield* Queue.unbounded<number>(), Faults.interrupt(2))
      const producer = yield* Effect.forkChild(
        Effect.forEach([1, 2, 3], (n) => faulty.offer(n)).pipe(Effect.ensuring(Effect.sync(() => finalized++)))
      )
      const exit = yield* Fiber.await(producer)
      expect(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)).toBe(true)
      expect([finalized, yield* Queue.clear(faulty.queue)]).toEqual([1, [1]])
    }))
})
