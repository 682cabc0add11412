/**
 * The clock of a bubble: virtual time that only moves when the bubble has
 * nothing else to do.
 *
 * It implements `TestClock.TestClock`, so code that calls `TestClock.adjust`
 * keeps working; inside a bubble `adjust(d)` simply waits `d` of virtual time
 * (the bubble moves the clock through every timer on the way), and
 * `setTime(t)` waits until `t`.
 *
 * Timers are kept in due order (ties in the order they were set). Waking one
 * resumes its fiber, which the bubble's scheduler turns into a task like any
 * other wake-up, so the order of fibers woken at the same instant is explored
 * too.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { TestClock } from "effect/testing"
import * as Waits from "./waits.ts"

interface Timer {
  readonly at: number
  readonly seq: number
  readonly resume: (effect: Effect.Effect<void>) => void
}

/** @internal */
export class VirtualClock implements TestClock.TestClock {
  private now: number
  private seq = 0
  private readonly timers: Array<Timer> = []
  private readonly live: Clock.Clock

  constructor(live: Clock.Clock, start = 0) {
    this.live = live
    this.now = start
  }

  currentTimeMillisUnsafe(): number {
    return this.now
  }
  readonly currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.now)
  currentTimeNanosUnsafe(): bigint {
    return BigInt(Math.round(this.now * 1_000_000))
  }
  readonly currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())
  monotonicTimeNanosUnsafe(): bigint {
    return this.currentTimeNanosUnsafe()
  }
  readonly monotonicTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.currentTimeNanosUnsafe())

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    const millis = Duration.toMillis(duration)
    if (millis <= 0) return Effect.yieldNow
    if (!Number.isFinite(millis)) return Effect.never
    const register = (resume: (effect: Effect.Effect<void>) => void) => {
      const timer: Timer = { at: this.now + millis, seq: this.seq++, resume }
      Waits.tagRegister(register, Waits.sleep(timer.at))
      this.insert(timer)
      return Effect.sync(() => this.remove(timer))
    }
    return Effect.callback<void>(register)
  }

  adjust(duration: Duration.Input): Effect.Effect<void> {
    return Effect.suspend(() => this.sleep(Duration.fromInputUnsafe(duration)))
  }

  setTime(timestamp: number): Effect.Effect<void> {
    return Effect.suspend(() => this.sleep(Duration.millis(Math.max(0, timestamp - this.now))))
  }

  withLive<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.provideService(effect, Clock.Clock, this.live)
  }

  /** Number of timers set and not yet fired. */
  pending(): number {
    return this.timers.length
  }

  /** When the next timer is due, if any. */
  next(): number | undefined {
    return this.timers[0]?.at
  }

  /**
   * Moves time to the earliest timer and fires every timer due then, in the
   * order they were set. Returns how many fired.
   */
  advance(): number {
    const first = this.timers[0]
    if (first === undefined) return 0
    this.now = Math.max(this.now, first.at)
    const due: Array<Timer> = []
    while (this.timers.length > 0 && this.timers[0]!.at <= this.now) due.push(this.timers.shift()!)
    for (const timer of due) timer.resume(Effect.void)
    return due.length
  }

  private insert(timer: Timer) {
    let low = 0
    let high = this.timers.length
    while (low < high) {
      const mid = (low + high) >>> 1
      const t = this.timers[mid]!
      if (t.at < timer.at || (t.at === timer.at && t.seq < timer.seq)) low = mid + 1
      else high = mid
    }
    this.timers.splice(low, 0, timer)
  }

  private remove(timer: Timer) {
    const i = this.timers.indexOf(timer)
    if (i !== -1) this.timers.splice(i, 1)
  }
}
