/**
 * A hub's reading of its log's tail: the changes the log reports, turned
 * into bursts for the fan-out in order, each entry once.
 *
 * - An `Appended` burst that continues the fan-out's position is delivered
 *   at once, in the log's stack (an in-memory log: the end of the publishing
 *   run).
 * - A hole (a burst that jumps ahead, or `Missed`) is read from the record
 *   before anything newer is delivered; entries the record no longer has are
 *   skipped with a gap signal to every subscriber.
 * - A new epoch (announced by `EpochChanged`, or by the first entry of the
 *   new record) restarts the fan-out with a `restarted` gap signal.
 * - Over a remote log a backpressured subscriber that refused a burst is
 *   waited for (each at most its timeout) before the next change.
 *
 * - Write coalescing: an `Appended` burst that arrives within the hub's
 *   `coalesce` window of the end of the last delivery waits for the end of the window,
 *   joined by whatever arrives meanwhile, and goes out as one burst (one
 *   write per subscriber). After a quiet spell a burst goes out at once; a
 *   burst is never held while a publisher waits for backpressured
 *   subscribers, nor past a `flush`.
 *
 * Whatever must be waited for (a read, a blocked subscriber) is done by a
 * catch-up fiber while later changes are held, in order. A log in this
 * process never needs it: its tail is contiguous, and the publisher that
 * waits for blocked subscribers claims them (`FanOut.claiming`).
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { seal } from "../burst.ts"
import { FiberLabel } from "../fiberLabel.ts"
import * as ticker from "../ticker.ts"
import type { Blocked, FanOut } from "./fanOut.ts"

type Task =
  | { readonly _tag: "Refill"; readonly resume: Log.Change | undefined }
  | { readonly _tag: "Blocked"; readonly blocked: ReadonlyArray<Blocked> }

// One read of a hole: at most this much at a time, until it is filled.
const refillBudget: Log.Budget = { maxEvents: 1_024, maxBytes: 1_048_576 }
// Failed reads of a hole before giving up on it (with a gap signal).
const refillAttempts = 6

// After Node's writes of this tick (`process.nextTick` runs in order), or
// after the current microtasks elsewhere.
const afterWrites: (f: () => void) => void =
  (globalThis as { process?: { nextTick?: (f: () => void) => void } }).process?.nextTick ?? queueMicrotask

/** A burst waiting for the end of the coalescing window. */
interface Waiting {
  readonly epoch: string
  readonly firstSeq: number
  readonly frames: Array<Uint8Array>
}

/** @internal */
export class Tail implements ticker.Entry {
  // While a catch-up runs: the changes that arrived meanwhile, in order.
  private held: Array<Log.Change> | undefined = undefined
  // A hole the record could not fill: the next jump is taken (with a gap signal).
  private acceptJump = false
  // The coalescing window: when the last delivery's writes ended (Clock
  // nanos), whether they are still under way, and the burst waiting.
  private deliveredAt = Number.NEGATIVE_INFINITY
  private writing = false
  private startedAt = 0
  private waiting: Waiting | undefined = undefined
  // On the clock's ticker (the tail is its own entry).
  at = 0
  index = -1
  private readonly log: Log.Log
  private readonly fanOut: FanOut
  private readonly context: Context.Context<never>
  private readonly clock: Clock.Clock
  private readonly windowNanos: number | undefined

  constructor(
    log: Log.Log,
    fanOut: FanOut,
    context: Context.Context<never>,
    clock: Clock.Clock,
    windowNanos: number | undefined
  ) {
    this.log = log
    this.fanOut = fanOut
    this.context = context
    this.clock = clock
    this.windowNanos = windowNanos
  }

  /** A catch-up is under way, or a burst waits (changes are held). */
  busy(): boolean {
    return this.held !== undefined || this.waiting !== undefined
  }

  /** The log's listener. */
  readonly onChange = (change: Log.Change): void => {
    if (this.held !== undefined) {
      this.held.push(change)
      return
    }
    if (change._tag === "Appended" && this.coalesced(change)) return
    this.release()
    this.apply(change)
    if (change._tag === "Appended" && this.windowNanos !== undefined) this.delivered()
  }

  /** Delivers now whatever the log and the window still hold. */
  flush(): void {
    this.log.synchronous?.flush()
    if (this.held === undefined) this.release()
  }

  /** The window's end (the ticker). */
  fire(now: number): number | undefined {
    void now
    if (this.held === undefined) this.release()
    return undefined
  }

  private apply(change: Log.Change): void {
    const task = this.step(change)
    if (task !== undefined) this.startCatchUp(task)
  }

  // Held for the window's end (`true`), or to go out now.
  private coalesced(change: Extract<Log.Change, { _tag: "Appended" }>): boolean {
    const window = this.windowNanos
    const fanOut = this.fanOut
    // Nothing to spare (no subscriber), or a publisher waits for this delivery.
    if (window === undefined || fanOut.members.size === 0 || fanOut.backpressured > 0 || fanOut.claiming) {
      return false
    }
    const waiting = this.waiting
    if (waiting !== undefined) {
      if (change.epoch !== waiting.epoch || change.firstSeq !== waiting.firstSeq + waiting.frames.length) return false
      for (const frame of change.frames) waiting.frames.push(frame)
      return true
    }
    if (this.writing) {
      // The last delivery is still being written: this waits for its end and the window after it.
      this.waiting = { epoch: change.epoch, firstSeq: change.firstSeq, frames: [...change.frames] }
      return true
    }
    const since = Number(this.clock.currentTimeNanosUnsafe()) - this.deliveredAt
    // A clock that did not move (a test clock) holds nothing.
    if (!(since > 0 && since < window)) return false
    this.waiting = { epoch: change.epoch, firstSeq: change.firstSeq, frames: [...change.frames] }
    this.schedule(this.deliveredAt + window)
    return true
  }

  private schedule(atNanos: number): void {
    ticker.tickerFor(this.clock).schedule(this, Math.ceil(atNanos / 1e6), this.context)
  }

  // A delivery was handed out. Node writes each subscriber's chunk when it
  // uncorks the socket, on the next tick: the window starts once they are
  // written, so what arrives while a delivery is written waits for the next.
  private delivered(): void {
    this.writing = true
    this.startedAt = Number(this.clock.currentTimeNanosUnsafe())
    afterWrites(this.written)
  }

  private readonly written = (): void => {
    this.writing = false
    const now = Number(this.clock.currentTimeNanosUnsafe())
    this.deliveredAt = now
    if (this.waiting === undefined) return
    // A clock that did not move (a test clock) holds nothing.
    if (now === this.startedAt) return this.release()
    this.schedule(now + this.windowNanos!)
  }

  // The waiting burst goes out.
  private release(): void {
    const waiting = this.waiting
    if (waiting === undefined) return
    this.waiting = undefined
    ticker.tickerFor(this.clock).cancel(this)
    this.apply({ _tag: "Appended", epoch: waiting.epoch, firstSeq: waiting.firstSeq, frames: waiting.frames })
    this.delivered()
  }

  // Applies one change now; returns what must be waited for before the next.
  private step(change: Log.Change): Task | undefined {
    const fanOut = this.fanOut
    if (change.epoch !== fanOut.epoch) {
      // A change from a new life of the record, announced or not.
      const at = change._tag === "Appended"
        ? change.firstSeq - 1
        : change._tag === "Missed"
        ? change.afterSeq
        : change.seq
      fanOut.restart(change.epoch, at)
    }
    switch (change._tag) {
      case "EpochChanged":
        return change.seq > fanOut.seq ? { _tag: "Refill", resume: undefined } : undefined
      case "Missed":
        return { _tag: "Refill", resume: undefined }
      case "Appended": {
        if (change.firstSeq > fanOut.seq + 1) {
          if (!this.acceptJump) return { _tag: "Refill", resume: change }
          this.acceptJump = false
          fanOut.lost("unknown", change.firstSeq - 1)
        }
        // The log hands the frames over: from here on they are a burst.
        fanOut.deliver(seal(change.frames), change.firstSeq)
        if (fanOut.claiming) return undefined
        const blocked = fanOut.takeBlocked()
        return blocked === undefined ? undefined : { _tag: "Blocked", blocked }
      }
    }
  }

  private startCatchUp(task: Task): void {
    this.held = []
    const context = Context.add(this.context, FiberLabel, "sluice/hub/catch-up")
    Effect.runForkWith(context)(this.catchUp(task))
  }

  private catchUp(first: Task): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      let task: Task | undefined = first
      while (task !== undefined) {
        if (task._tag === "Blocked") {
          yield* this.fanOut.awaitBlocked(task.blocked)
          task = undefined
        } else {
          yield* this.refill()
          task = task.resume === undefined ? undefined : this.step(task.resume)
        }
        while (task === undefined && this.held!.length > 0) task = this.step(this.held!.shift()!)
      }
      this.held = undefined
    })
  }

  // Reads the record after the fan-out's position and delivers it, until
  // nothing is left out.
  private refill(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      const fanOut = this.fanOut
      let failures = 0
      while (true) {
        const read = yield* Effect.exit(
          this.log.read({ _tag: "AfterSeq", epoch: fanOut.epoch, seq: fanOut.seq, budget: refillBudget })
        )
        if (Exit.isFailure(read)) {
          if (++failures === refillAttempts) {
            // The hole cannot be read: the next jump is taken, with a gap signal.
            this.acceptJump = true
            return
          }
          yield* Effect.sleep(100 * 2 ** failures)
          continue
        }
        const result = read.value
        if (result._tag === "NotFound") {
          if (result.reason === "restarted" || result.epoch !== fanOut.epoch) {
            fanOut.restart(result.epoch, result.lastSeq)
          } else yield* this.skipLost(result.reason)
          return
        }
        if (result.entries.length > 0) yield* this.deliver(result.entries)
        if (result.complete || result.entries.length === 0) return
      }
    })
  }

  // The hole is gone from the record: everyone is told, and delivery goes on
  // from the oldest entry the record still has (its newest entries, read).
  private skipLost(reason: Hub.GapReason): Effect.Effect<void> {
    return Effect.flatMap(
      Effect.exit(this.log.read({ _tag: "Newest", budget: refillBudget })),
      (read) => {
        if (Exit.isFailure(read) || read.value._tag === "NotFound") {
          this.acceptJump = true
          return Effect.void
        }
        const { entries, lastSeq } = read.value
        this.fanOut.lost(reason, entries.length > 0 ? entries[0]!.seq - 1 : lastSeq)
        return entries.length > 0 ? this.deliver(entries) : Effect.void
      }
    )
  }

  // Entries read from the record, delivered; blocked subscribers waited for.
  private deliver(entries: ReadonlyArray<Log.Entry>): Effect.Effect<void> {
    this.fanOut.deliver(seal(entries.map((e) => e.frame)), entries[0]!.seq)
    const blocked = this.fanOut.takeBlocked()
    return blocked === undefined ? Effect.void : Effect.asVoid(this.fanOut.awaitBlocked(blocked))
  }
}
