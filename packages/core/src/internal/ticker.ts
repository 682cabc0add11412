/**
 * One timer for many connections: heartbeats and write deadlines of every
 * connection on the same clock share a single sleeping fiber, instead of one
 * sleeping fiber per connection (a fiber, a generator and a timer each).
 *
 * Entries are kept in a min-heap by due time. The fiber sleeps (on the Effect
 * clock, so TestClock drives it) until the earliest entry, fires every due
 * entry, and re-arms those that ask for it. It ends when no entry is left and
 * restarts with the next one, so it never outlives the connections that use
 * it.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { FiberLabel } from "./fiberLabel.ts"

/** A connection's deadline entry in the heap. @internal */
export interface Entry {
  /** Runs at or after the due time; returns the next due time, or `undefined` to stop. */
  readonly fire: (now: number) => number | undefined
  at: number
  index: number
}

class Ticker {
  private readonly heap: Array<Entry> = []
  private fiber: Fiber.Fiber<void> | undefined = undefined
  private sleepingUntil = Number.POSITIVE_INFINITY
  private readonly clock: Clock.Clock

  constructor(clock: Clock.Clock) {
    this.clock = clock
  }

  schedule(entry: Entry, at: number, context: Context.Context<never>) {
    entry.at = at
    if (entry.index === -1) this.push(entry)
    else this.update(entry)
    if (this.fiber === undefined || at < this.sleepingUntil) this.restart(context)
  }

  cancel(entry: Entry) {
    if (entry.index === -1) return
    this.remove(entry)
    if (this.heap.length === 0 && this.fiber !== undefined) {
      const fiber = this.fiber
      this.fiber = undefined
      this.sleepingUntil = Number.POSITIVE_INFINITY
      fiber.interruptUnsafe()
    }
  }

  private restart(context: Context.Context<never>) {
    this.fiber?.interruptUnsafe()
    this.fiber = Effect.runForkWith(labelled(context))(this.loop)
  }

  private readonly loop: Effect.Effect<void> = Effect.suspend(() => {
    const step = (): Effect.Effect<void> =>
      Effect.suspend(() => {
        const now = this.clock.currentTimeMillisUnsafe()
        while (this.heap.length > 0 && this.heap[0]!.at <= now) {
          const entry = this.heap[0]!
          this.remove(entry)
          const next = entry.fire(now)
          if (next !== undefined) {
            entry.at = next
            this.push(entry)
          }
        }
        if (this.heap.length === 0) {
          this.fiber = undefined
          this.sleepingUntil = Number.POSITIVE_INFINITY
          return Effect.void
        }
        const at = this.heap[0]!.at
        this.sleepingUntil = at
        return Effect.andThen(Effect.sleep(at - now), step())
      })
    return step()
  })

  // --- min-heap by `at` ------------------------------------------------------

  private push(entry: Entry) {
    entry.index = this.heap.length
    this.heap.push(entry)
    this.up(entry.index)
  }

  private update(entry: Entry) {
    this.up(entry.index)
    this.down(entry.index)
  }

  private remove(entry: Entry) {
    const i = entry.index
    const last = this.heap.pop()!
    entry.index = -1
    if (last !== entry) {
      this.heap[i] = last
      last.index = i
      this.update(last)
    }
  }

  private up(i: number) {
    const heap = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= heap[i]!.at) break
      this.swap(i, parent)
      i = parent
    }
  }

  private down(i: number) {
    const heap = this.heap
    while (true) {
      const l = 2 * i + 1
      const r = l + 1
      let smallest = i
      if (l < heap.length && heap[l]!.at < heap[smallest]!.at) smallest = l
      if (r < heap.length && heap[r]!.at < heap[smallest]!.at) smallest = r
      if (smallest === i) return
      this.swap(i, smallest)
      i = smallest
    }
  }

  private swap(a: number, b: number) {
    const heap = this.heap
    const x = heap[a]!
    const y = heap[b]!
    heap[a] = y
    heap[b] = x
    x.index = b
    y.index = a
  }
}

// The ticker's fiber is labelled for the leak tracker.
const labelled = (context: Context.Context<never>) => Context.add(context, FiberLabel, "sluice/ticker")

const tickers = new WeakMap<Clock.Clock, Ticker>()

/** The ticker of `clock` (one per clock: each TestClock gets its own). @internal */
export const tickerFor = (clock: Clock.Clock): Ticker => {
  let ticker = tickers.get(clock)
  if (ticker === undefined) {
    ticker = new Ticker(clock)
    tickers.set(clock, ticker)
  }
  return ticker
}

/** A fresh entry, not scheduled. @internal */
export const entry = (fire: (now: number) => number | undefined): Entry => ({ fire, at: 0, index: -1 })
