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
 * Whatever must be waited for (a read, a blocked subscriber) is done by a
 * catch-up fiber while later changes are held, in order. A log in this
 * process never needs it: its tail is contiguous, and the publisher that
 * waits for blocked subscribers claims them (`FanOut.claiming`).
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { seal } from "../burst.ts"
import { FiberLabel } from "../fiberLabel.ts"
import type { Blocked, FanOut } from "./fanOut.ts"

type Task =
  | { readonly _tag: "Refill"; readonly resume: Log.Change | undefined }
  | { readonly _tag: "Blocked"; readonly blocked: ReadonlyArray<Blocked> }

// One read of a hole: at most this much at a time, until it is filled.
const refillBudget: Log.Budget = { maxEvents: 1_024, maxBytes: 1_048_576 }
// Failed reads of a hole before giving up on it (with a gap signal).
const refillAttempts = 6

/** @internal */
export class Tail {
  // While a catch-up runs: the changes that arrived meanwhile, in order.
  private held: Array<Log.Change> | undefined = undefined
  // A hole the record could not fill: the next jump is taken (with a gap signal).
  private acceptJump = false
  private readonly log: Log.Log
  private readonly fanOut: FanOut
  private readonly context: Context.Context<never>

  constructor(log: Log.Log, fanOut: FanOut, context: Context.Context<never>) {
    this.log = log
    this.fanOut = fanOut
    this.context = context
  }

  /** A catch-up is under way (changes are held). */
  busy(): boolean {
    return this.held !== undefined
  }

  /** The log's listener. */
  readonly onChange = (change: Log.Change): void => {
    if (this.held !== undefined) {
      this.held.push(change)
      return
    }
    const task = this.step(change)
    if (task !== undefined) this.startCatchUp(task)
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
