// The tail's logic against a record played by the test (no Redis): what it
// reads, when the reads answer, and which bursts Pub/Sub brings.
import { describe, expect, it } from "@effect/vitest"
import type { Log } from "@sluice/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import { type Burst, type Range, Tail } from "../src/internal/tail.ts"

interface Record {
  epoch: string
  entries: Array<{ seq: number; fields: string }>
  lastSeq: number
  /** Reads wait for this when set. */
  gate: Deferred.Deferred<void> | undefined
  /** Reads that fail before one succeeds. */
  failures: number
  reads: number
}

const record = (epoch: string, n: number): Record => ({
  epoch,
  entries: Array.from({ length: n }, (_, i) => ({ seq: i + 1, fields: `data: ${i + 1}\n\n` })),
  lastSeq: n,
  gate: undefined,
  failures: 0,
  reads: 0
})

const read = (r: Record) => (after: number, count: number): Effect.Effect<Range, Log.LogError> =>
  Effect.gen(function*() {
    r.reads++
    if (r.gate !== undefined) yield* Deferred.await(r.gate)
    if (r.failures > 0) {
      r.failures--
      return yield* Effect.fail({ _tag: "LogError" } as unknown as Log.LogError)
    }
    const retained = r.entries.filter((e) => e.seq > after).slice(0, count)
    return {
      epoch: r.epoch,
      lastSeq: r.lastSeq,
      firstRetained: r.entries[0]?.seq ?? r.lastSeq + 1,
      entries: retained.map((e) => ({ seq: e.seq, callerId: "", fields: e.fields }))
    }
  })

const burst = (epoch: string, first: number, n: number): Burst => ({
  epoch,
  first,
  fields: Array.from({ length: n }, (_, i) => `data: ${first + i}\n\n`),
  callerIds: undefined
})

/** A tail over `r`, opened at `at`, whose changes are lines: `A e 3`, `M 2`, `E e 0`. */
const tailOver = (r: Record, at: number, maxBuffered = 100) =>
  Effect.gen(function*() {
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const tail = new Tail({
      read: read(r),
      run: (effect) => {
        run(effect)
      },
      maxBuffered,
      chunk: 3,
      retry: Schedule.spaced("1 millis"),
      count: () => {}
    })
    const changes = yield* Queue.unbounded<string>()
    tail.listeners.add((c) => {
      if (c._tag === "Appended") {
        c.frames.forEach((_, i) => Queue.offerUnsafe(changes, `A ${c.epoch} ${c.firstSeq + i}`))
      } else if (c._tag === "Missed") Queue.offerUnsafe(changes, `M ${c.afterSeq}`)
      else Queue.offerUnsafe(changes, `E ${c.epoch} ${c.seq}`)
    })
    tail.open({ epoch: r.epoch, lastSeq: at, firstRetained: 1, entries: [] })
    const take = (n: number) =>
      Effect.gen(function*() {
        const out: Array<string> = []
        while (out.length < n) out.push(yield* Queue.take(changes))
        return out
      }).pipe(Effect.timeout("5 seconds"))
    return { tail, take, pending: () => Queue.sizeUnsafe(changes) }
  })

const seqs = (epoch: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `A ${epoch} ${from + i}`)

describe("Tail", () => {
  it.live("delivers bursts in order, each entry once (duplicates and overlaps dropped)", () =>
    Effect.gen(function*() {
      const r = record("e", 0)
      const { tail, take } = yield* tailOver(r, 0)
      tail.receive(burst("e", 1, 2))
      tail.receive(burst("e", 2, 3)) // overlaps 2
      tail.receive(burst("e", 1, 1)) // seen
      expect(yield* take(4)).toEqual(seqs("e", 1, 4))
      expect(r.reads).toBe(0)
    }).pipe(Effect.scoped))

  it.live("a jump is filled from the record before the newer burst; bursts during the fill wait", () =>
    Effect.gen(function*() {
      const r = record("e", 10)
      r.gate = yield* Deferred.make<void>()
      const { tail, take, pending } = yield* tailOver(r, 2)
      tail.receive(burst("e", 6, 2)) // 3..5 missing
      tail.receive(burst("e", 8, 3))
      yield* Effect.yieldNow
      expect(pending()).toBe(0)
      yield* Deferred.succeed(r.gate, undefined)
      expect(yield* take(8)).toEqual(seqs("e", 3, 10))
    }).pipe(Effect.scoped))

  it.live("a hole the record no longer has is Missed, then delivery goes on from what it has", () =>
    Effect.gen(function*() {
      const r = record("e", 10)
      r.entries = r.entries.filter((e) => e.seq >= 7)
      const { tail, take } = yield* tailOver(r, 2)
      tail.receive(burst("e", 9, 2))
      expect(yield* take(5)).toEqual(["M 2", ...seqs("e", 7, 10)])
    }).pipe(Effect.scoped))

  it.live("a new epoch: EpochChanged, then the new life from 1; late bursts of the old epoch are dropped", () =>
    Effect.gen(function*() {
      const r = record("new", 3)
      const { tail, take, pending } = yield* tailOver(record("old", 5), 5) // The tail reads `r` from now on.
      ;(tail as unknown as { deps: { read: unknown } }).deps.read = read(r)
      tail.receive(burst("new", 3, 1)) // 1, 2 of the new epoch missed
      expect(yield* take(4)).toEqual(["E new 0", ...seqs("new", 1, 3)])
      tail.receive(burst("old", 6, 1))
      yield* Effect.yieldNow
      expect(pending()).toBe(0)
      expect(tail.epoch).toBe("new")
    }).pipe(Effect.scoped))

  it.live("memory stays bounded during a long fill: the buffer is dropped and the fill reads on to the end", () =>
    Effect.gen(function*() {
      const r = record("e", 40)
      r.gate = yield* Deferred.make<void>()
      const { tail, take } = yield* tailOver(r, 0, 5)
      tail.receive(burst("e", 3, 2))
      for (let s = 5; s <= 40; s += 4) tail.receive(burst("e", s, 4)) // far more than 5 buffered
      yield* Deferred.succeed(r.gate, undefined)
      expect(yield* take(40)).toEqual(seqs("e", 1, 40))
    }).pipe(Effect.scoped))

  it.live("reads that fail are retried: nothing is skipped", () =>
    Effect.gen(function*() {
      const r = record("e", 6)
      r.failures = 3
      const { tail, take } = yield* tailOver(r, 0)
      tail.receive(burst("e", 6, 1))
      expect(yield* take(6)).toEqual(seqs("e", 1, 6))
      expect(r.reads).toBeGreaterThanOrEqual(4)
    }).pipe(Effect.scoped))

  it.live("position checks: a lag that outlives one check is filled; a new epoch at once", () =>
    Effect.gen(function*() {
      const r = record("e", 4)
      const { tail, take, pending } = yield* tailOver(r, 2)
      const position: Range = { epoch: "e", lastSeq: 4, firstRetained: 1, entries: [] }
      tail.checked(position, false) // first sight of the lag: maybe a burst is on its way
      yield* Effect.yieldNow
      expect(pending()).toBe(0)
      tail.checked(position, false) // still behind
      expect(yield* take(2)).toEqual(seqs("e", 3, 4))
      r.epoch = "f"
      r.entries = [{ seq: 1, fields: "data: f1\n\n" }]
      r.lastSeq = 1
      tail.checked({ epoch: "f", lastSeq: 1, firstRetained: 1, entries: [] }, false)
      expect(yield* take(2)).toEqual(["E f 0", "A f 1"])
    }).pipe(Effect.scoped))
})
