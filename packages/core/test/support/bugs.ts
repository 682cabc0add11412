// Five concurrency bugs written the way users write them, with effect's own
// Queue, Deferred, Ref and Fiber (not sluice's actor), each with its fix. The
// kit's tests and docs/testing.md use them as worked examples.
import { Cause, Deferred, Effect, Fiber, Queue, Ref, Semaphore } from "effect"
import { FiberLabel } from "../../src/testing.ts"

/**
 * 1. The Go "drain" leak: the consumer stops after the first result; the
 * producer stays blocked on the full queue forever. The fix shuts the queue
 * down, so the blocked offer returns `false` and the producer ends.
 */
export const drainLeak = (fixed: boolean) =>
  Effect.gen(function*() {
    const results = yield* Queue.bounded<number>(1)
    yield* Effect.forkChild(
      Effect.forEach([1, 2, 3, 4, 5], (i) => Queue.offer(results, i), { discard: true }).pipe(
        FiberLabel.set("producer")
      )
    )
    const first = yield* Queue.take(results)
    if (fixed) yield* Queue.shutdown(results)
    return first
  })

/**
 * 2a. A lost update: two fibers read a counter, then write it back plus one.
 * The fix does the read and the write in one step (`Ref.update`).
 */
export const lostUpdate = (fixed: boolean) =>
  Effect.gen(function*() {
    const counter = yield* Ref.make(0)
    const increment = fixed
      ? Ref.update(counter, (n) => n + 1)
      : Effect.gen(function*() {
        const n = yield* Ref.get(counter)
        yield* Ref.set(counter, n + 1)
      })
    const a = yield* Effect.forkChild(increment.pipe(FiberLabel.set("a")))
    const b = yield* Effect.forkChild(increment.pipe(FiberLabel.set("b")))
    yield* Fiber.joinAll([a, b])
    return yield* Ref.get(counter)
  })

/**
 * 2b. Check-then-act: a lazy cache initialised by whoever finds it empty;
 * two callers can both find it empty and both run the (expensive, one-time)
 * initialisation. The fix serialises the check and the act with a semaphore.
 * Returns how many times the initialisation ran.
 */
export const lazyInit = (fixed: boolean) =>
  Effect.gen(function*() {
    const initialisations = yield* Ref.make(0)
    const cache = yield* Ref.make<number | undefined>(undefined)
    const lock = yield* Semaphore.make(1)
    const load = Effect.gen(function*() {
      const cached = yield* Ref.get(cache)
      if (cached !== undefined) return cached
      yield* Ref.update(initialisations, (n) => n + 1)
      yield* Ref.set(cache, 42)
      return 42
    })
    const get = fixed ? lock.withPermits(1)(load) : load
    const a = yield* Effect.forkChild(get.pipe(FiberLabel.set("caller-a")))
    const b = yield* Effect.forkChild(get.pipe(FiberLabel.set("caller-b")))
    yield* Fiber.joinAll([a, b])
    return yield* Ref.get(initialisations)
  })

/**
 * 3. A narrow window: a ring buffer of `size` slots whose writer does not
 * check for room. Data is lost only when the writer laps the reader, that is
 * when it writes `size + 1` items (yielding after each) before the reader
 * takes its first turn: a random schedule gives the reader a turn almost at
 * once; PCT lets the writer run far ahead with probability about 1/2. The fix
 * waits for room. Returns what the reader read.
 */
export const ringBuffer = (fixed: boolean, size = 16) =>
  Effect.gen(function*() {
    const slots: Array<number> = Array.from({ length: size }, () => 0)
    const written = yield* Ref.make(0)
    const read = yield* Ref.make(0)
    const items = size + 1
    const writer = Effect.gen(function*() {
      for (let i = 1; i <= items; i++) {
        if (fixed) {
          while ((yield* Ref.get(written)) - (yield* Ref.get(read)) >= size) yield* Effect.yieldNow
        }
        slots[(i - 1) % size] = i
        yield* Ref.set(written, i)
        yield* Effect.yieldNow
      }
    })
    const reader = Effect.gen(function*() {
      const got: Array<number> = []
      while (got.length < items) {
        const r = yield* Ref.get(read)
        if (r < (yield* Ref.get(written))) {
          got.push(slots[r % size]!)
          yield* Ref.set(read, r + 1)
        }
        yield* Effect.yieldNow
      }
      return got
    })
    const w = yield* Effect.forkChild(writer.pipe(FiberLabel.set("writer")))
    const r = yield* Effect.forkChild(reader.pipe(FiberLabel.set("reader")))
    yield* Fiber.join(w)
    return yield* Fiber.join(r)
  })

/** What {@link ringBuffer} must return: every item, in order. */
export const ringBufferOk = (got: ReadonlyArray<number>, size = 16) =>
  got.length === size + 1 && got.every((n, i) => n === i + 1)

/**
 * 4. A deadlock: each fiber waits for the other's signal before giving its
 * own. There is no fix to test; the bubble names both fibers.
 */
export const deadlock = Effect.gen(function*() {
  const ping = yield* Deferred.make<void>()
  const pong = yield* Deferred.make<void>()
  const a = yield* Effect.forkChild(
    Deferred.await(pong).pipe(Effect.andThen(Deferred.succeed(ping, undefined)), FiberLabel.set("pinger"))
  )
  const b = yield* Effect.forkChild(
    Deferred.await(ping).pipe(Effect.andThen(Deferred.succeed(pong, undefined)), FiberLabel.set("ponger"))
  )
  yield* Fiber.joinAll([a, b])
})

/**
 * 5. "Done while events are buffered" (the go-agentic bug): the consumer races
 * the done signal against the next take. The producer does some work before
 * each event, so the consumer usually keeps up; but when done is signalled
 * while an event is still in the queue, the race can pick done and the event
 * is lost. The fix has a single channel: the producer ends the queue after
 * its last event, and the consumer takes until the queue says it is done.
 * Returns the events the consumer saw.
 */
export const doneWhileBuffered = (fixed: boolean) =>
  Effect.gen(function*() {
    const events = yield* Queue.unbounded<number, Cause.Done>()
    const done = yield* Deferred.make<void>()
    const producer = Effect.gen(function*() {
      for (const event of [1, 2, 3]) {
        yield* Effect.yieldNow // the work that produces the event
        yield* Queue.offer(events, event)
      }
      if (fixed) yield* Queue.end(events)
      else yield* Deferred.succeed(done, undefined)
    })
    const consumer = Effect.gen(function*() {
      const seen: Array<number> = []
      while (true) {
        const next = fixed
          ? yield* Effect.catchIf(Queue.take(events), Cause.isDone, () => Effect.succeed(undefined))
          : yield* Effect.race(Effect.as(Deferred.await(done), undefined), Queue.take(events))
        if (next === undefined) return seen
        seen.push(next)
      }
    })
    const c = yield* Effect.forkChild(consumer.pipe(FiberLabel.set("consumer")))
    yield* Effect.forkChild(producer.pipe(FiberLabel.set("producer")))
    return yield* Fiber.join(c)
  })

/**
 * 5, first attempt at a fix: keep the race, but drain the queue once done
 * wins. Still wrong under Effect's semantics: when both the done fiber and
 * the take fiber complete, the race discards the loser's result, and with it
 * the event it took.
 */
export const doneThenDrain = Effect.gen(function*() {
  const events = yield* Queue.unbounded<number>()
  const done = yield* Deferred.make<void>()
  const producer = Effect.gen(function*() {
    for (const event of [1, 2, 3]) {
      yield* Effect.yieldNow
      yield* Queue.offer(events, event)
    }
    yield* Deferred.succeed(done, undefined)
  })
  const consumer = Effect.gen(function*() {
    const seen: Array<number> = []
    while (true) {
      const next = yield* Effect.race(Effect.as(Deferred.await(done), undefined), Queue.take(events))
      if (next === undefined) return [...seen, ...(yield* Queue.clear(events))]
      seen.push(next)
    }
  })
  const c = yield* Effect.forkChild(consumer.pipe(FiberLabel.set("consumer")))
  yield* Effect.forkChild(producer.pipe(FiberLabel.set("producer")))
  return yield* Fiber.join(c)
})
