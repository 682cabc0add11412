/**
 * The fan-out: a hub's subscribers, fed from its log's tail.
 *
 * Each burst the tail hands over (`Log.Change` `Appended`) is offered, as the
 * very same sealed burst (see `burst`), to every live subscriber's mailbox (one call per
 * subscriber per burst), from the subscriber's own starting point. A
 * subscriber that refuses is handled by its policy: removed when its
 * connection is closing, disconnected with `SlowConsumer` under
 * `disconnect`, left to its connection's drop counting under the dropping
 * policies, and kept aside as *blocked* under `backpressure`.
 *
 * What it guarantees:
 * - **One order, each entry once**: the fan-out tracks the position it has
 *   delivered (`epoch`, `seq`); entries at or before it are not delivered
 *   again, and a hole (the tail jumped, or said `Missed`) is read from the
 *   record before anything newer is delivered.
 * - **Nothing lost without a signal**: when the record's epoch changes, or
 *   entries the tail missed are gone from the record, every subscriber gets
 *   a gap signal whose id is where it now stands.
 * - A log in this process never needs the asynchronous catch-up: its tail is
 *   contiguous, and a publisher waiting for blocked subscribers claims them
 *   (`claiming`). Over a remote log, a catch-up fiber reads holes and waits
 *   for blocked subscribers while later changes are held, in order.
 *
 * Metrics: `sluice_hub_deliveries_total`, `sluice_hub_slow_consumers_total{policy}`,
 * `sluice_hub_subscribers`.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { type Burst, seal } from "../burst.ts"
import type { Fed } from "../connection.ts"
import { FiberLabel } from "../fiberLabel.ts"
import * as ids from "../log/ids.ts"
import * as metrics from "../metrics.ts"
import type { Config } from "./config.ts"
import { SlowConsumer } from "./errors.ts"
import { gapFrame, HandOff } from "./replay.ts"
import { type Member, Members } from "./subscribers.ts"

/** The close reason a hub gives the connection of a slow consumer (the outcome makes it `slow-consumer`). @internal */
export const slowConsumerReason = "slow-consumer"

/** A registered subscriber. @internal */
export interface Subscriber extends Member {
  readonly conn: Fed
  readonly policy: Hub.Policy
  readonly timeoutMillis: number
  slow: SlowConsumer | undefined
  /** The first sequence number it gets live (0: every one). */
  fromSeq: number
}

/** A backpressured subscriber that refused `frames[from..]`. @internal */
export interface Blocked {
  readonly sub: Subscriber
  readonly frames: Burst
  readonly from: number
}

type Task =
  | { readonly _tag: "Refill"; readonly resume: Log.Change | undefined }
  | { readonly _tag: "Blocked"; readonly blocked: ReadonlyArray<Blocked> }

const slowConsumers = {
  disconnect: Metric.withAttributes(metrics.hubSlowConsumers, { policy: "disconnect" }),
  backpressure: Metric.withAttributes(metrics.hubSlowConsumers, { policy: "backpressure" })
} as const

// One read of a hole: at most this much at a time, until it is filled.
const refillBudget: Log.Budget = { maxEvents: 1_024, maxBytes: 1_048_576 }
// Failed reads of a hole before the fan-out gives up on it (with a gap signal).
const refillAttempts = 6
// Entries a hand-off keeps aside (at most the replay budget) before it reads
// the record again instead.
const handOffLimit = 4_096

/** @internal */
export class FanOut {
  readonly members = new Members<Subscriber>()
  /** Subscribers whose policy can make a publisher wait. */
  backpressured = 0
  /** Where delivery stands: entries up to `seq` of `epoch` were handed out. */
  epoch: string
  seq: number
  /** Set by a publisher that waits itself for the subscribers a delivery leaves blocked. */
  claiming = false
  /** Subscribers that took every frame of the last delivery. */
  accepted = 0
  /** Called when the last subscriber leaves. */
  onEmpty: (() => void) | undefined = undefined
  private blocked: Array<Blocked> | undefined = undefined
  private handOffs: Set<HandOff> | undefined = undefined
  // While a catch-up runs: the changes that arrived meanwhile, in order.
  private held: Array<Log.Change> | undefined = undefined
  // A hole the record could not fill: the next jump is taken (with a gap signal).
  private acceptJump = false
  private readonly deliveries: { count: number }
  private readonly cfg: Config
  private readonly log: Log.Log
  private readonly clock: Clock.Clock
  private readonly context: Context.Context<never>

  constructor(cfg: Config, log: Log.Log, clock: Clock.Clock, context: Context.Context<never>) {
    this.cfg = cfg
    this.log = log
    this.clock = clock
    this.context = context
    this.deliveries = metrics.hubDeliveriesCell(context)
    const start = log.position()
    this.epoch = start.epoch
    this.seq = start.seq
  }

  /** A catch-up is under way (changes are held). */
  busy(): boolean {
    return this.held !== undefined
  }

  add(sub: Subscriber): void {
    this.members.add(sub)
    if (sub.policy === "backpressure") this.backpressured++
    metrics.hubSubscribers.modifyUnsafe(1, this.context)
  }

  remove(sub: Subscriber): void {
    if (!this.members.remove(sub)) return
    if (sub.policy === "backpressure") this.backpressured--
    metrics.hubSubscribers.modifyUnsafe(-1, this.context)
    if (this.members.size === 0) this.onEmpty?.()
  }

  /** Ends a subscriber that could not keep up (its connection ends now). */
  disconnect(sub: Subscriber, policy: "disconnect" | "backpressure", waitedMillis?: number): void {
    sub.slow = new SlowConsumer({
      subscriber: sub.conn.id,
      policy,
      capacity: sub.conn.capacity,
      ...(waitedMillis === undefined ? {} : { waitedMillis })
    })
    // `false` when it had already ended for another reason.
    if (sub.conn.killUnsafe(slowConsumerReason)) slowConsumers[policy].updateUnsafe(1, this.context)
    else sub.slow = undefined
    this.remove(sub)
  }

  // ---------------------------------------------------------------------------
  // The tail

  /** The log's tail listener. */
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
    if (change.epoch !== this.epoch) {
      // A change from a new life of the record, announced or not.
      this.restart(
        change.epoch,
        change._tag === "Appended" ? change.firstSeq - 1 : change._tag === "Missed" ? change.afterSeq : change.seq
      )
      if (change._tag !== "Appended") return undefined
    }
    switch (change._tag) {
      case "EpochChanged":
        return change.seq > this.seq ? { _tag: "Refill", resume: undefined } : undefined
      case "Missed":
        return { _tag: "Refill", resume: undefined }
      case "Appended": {
        if (change.firstSeq > this.seq + 1) {
          if (!this.acceptJump) return { _tag: "Refill", resume: change }
          this.acceptJump = false
          this.lost("unknown", change.firstSeq - 1)
        }
        // The log hands the frames over: from here on they are a burst.
        this.deliver(seal(change.frames), change.firstSeq)
        if (this.blocked === undefined || this.claiming) return undefined
        return { _tag: "Blocked", blocked: this.takeBlocked()! }
      }
    }
  }

  /**
   * Offers entries `first, first + 1, …` (their frames, a burst) to every
   * subscriber from its starting point; entries already delivered are
   * skipped. Refusals go to {@link refused}.
   */
  deliver(frames: Burst, first: number): void {
    const skip = this.seq + 1 - first
    if (skip >= frames.length) return
    this.seq = first + frames.length - 1
    const floor = skip > 0 ? skip : 0
    if (this.handOffs !== undefined) { for (const h of this.handOffs) h.collect(frames, first, floor) }
    let accepted = 0
    const items = this.members.begin()
    try {
      for (let i = 0; i < items.length; i++) {
        const sub = items[i]!
        if (!sub.live) continue
        let at = sub.fromSeq - first
        if (at < floor) at = floor
        while (at < frames.length) {
          const stop = sub.conn.offerBurstUnsafe(frames, at)
          this.deliveries.count += stop - at
          if (stop === frames.length) {
            accepted++
            break
          }
          at = this.refused(sub, frames, stop)
        }
      }
    } finally {
      this.members.end()
    }
    this.accepted = accepted
  }

  // A subscriber refused `frames[stop]`: where to go on from (past the end: stop).
  private refused(sub: Subscriber, frames: Burst, stop: number): number {
    if (!sub.conn.accepting()) {
      this.remove(sub) // closing or ended
      return frames.length
    }
    switch (sub.policy) {
      case "disconnect":
        this.disconnect(sub, "disconnect")
        return frames.length
      case "backpressure":
        ;(this.blocked ??= []).push({ sub, frames, from: stop })
        return frames.length
      default:
        return stop + 1 // dropped and counted by the connection itself
    }
  }

  /** The subscribers the last delivery left blocked, for the caller to wait for. */
  takeBlocked(): Array<Blocked> | undefined {
    const blocked = this.blocked
    this.blocked = undefined
    return blocked
  }

  /**
   * Waits until each blocked subscriber took its frames, each at most its
   * timeout: then (or if the waiter is interrupted, which would leave it a
   * gap) it is disconnected. Succeeds with the subscribers that took them.
   */
  awaitBlocked(blocked: ReadonlyArray<Blocked>): Effect.Effect<number> {
    return Effect.map(
      Effect.forEach(blocked, (b) => this.awaitRoom(b), { concurrency: "unbounded" }),
      (counts) => counts.reduce((a, b) => a + b, 0)
    )
  }

  private awaitRoom({ frames, from, sub }: Blocked): Effect.Effect<number> {
    return Effect.suspend(() => {
      const started = this.clock.currentTimeMillisUnsafe()
      const waited = () => this.clock.currentTimeMillisUnsafe() - started
      const offerFrom = (k: number): Effect.Effect<boolean> =>
        k === frames.length
          ? Effect.succeed(true)
          : Effect.flatMap(sub.conn.offer(frames[k]!), (ok) => {
            if (!ok) return Effect.succeed(false)
            this.deliveries.count++
            return offerFrom(k + 1)
          })
      return Effect.timeoutOption(offerFrom(from), sub.timeoutMillis).pipe(
        Effect.map((accepted) => {
          if (accepted._tag === "None") {
            this.disconnect(sub, "backpressure", waited())
            return 0
          }
          if (accepted.value) return 1
          this.remove(sub)
          return 0
        }),
        Effect.onInterrupt(() => Effect.sync(() => this.disconnect(sub, "backpressure", waited())))
      )
    })
  }

  /** Offers one frame to every live subscriber, whatever its starting point. */
  private broadcast(frame: Uint8Array): void {
    const frames = seal([frame])
    const items = this.members.begin()
    try {
      for (let i = 0; i < items.length; i++) {
        const sub = items[i]!
        if (sub.live && sub.conn.offerBurstUnsafe(frames, 0) === 0) this.refused(sub, frames, 0)
      }
    } finally {
      this.members.end()
    }
  }

  /** The record started again as `epoch`: everyone is told, and delivery goes on after `seq`. */
  private restart(epoch: string, seq: number): void {
    const lastEventId = ids.format(this.epoch, this.seq)
    this.epoch = epoch
    this.seq = seq
    this.broadcast(gapFrame(this.cfg.gapEvent, "restarted", lastEventId, ids.format(epoch, seq)))
    for (const sub of this.members.begin()) sub.fromSeq = 0
    this.members.end()
    if (this.handOffs !== undefined) { for (const h of this.handOffs) h.lose("restarted") }
  }

  /** Entries up to `seq` are gone for good: everyone is told, and delivery goes on after `seq`. */
  private lost(reason: Hub.GapReason, seq: number): void {
    const lastEventId = ids.format(this.epoch, this.seq)
    this.seq = seq
    this.broadcast(gapFrame(this.cfg.gapEvent, reason, lastEventId, ids.format(this.epoch, seq)))
    if (this.handOffs !== undefined) { for (const h of this.handOffs) h.lose(reason) }
  }

  // ---------------------------------------------------------------------------
  // Hand-offs (a subscriber reading a remote record)

  /** Starts keeping live entries aside for a subscriber whose replay is being read. */
  beginHandOff(): HandOff {
    const handOff = new HandOff(this.seq, Math.min(handOffLimit, this.cfg.budget.maxEvents))
    ;(this.handOffs ??= new Set()).add(handOff)
    return handOff
  }

  endHandOff(handOff: HandOff): void {
    this.handOffs?.delete(handOff)
  }

  // ---------------------------------------------------------------------------
  // Catch-up (remote logs): holes and blocked subscribers, changes held meanwhile

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
          yield* this.awaitBlocked(task.blocked)
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
        this.lost(reason, entries.length > 0 ? entries[0]!.seq - 1 : lastSeq)
        if (entries.length > 0) this.deliver(seal(entries.map((e) => e.frame)), entries[0]!.seq)
        const blocked = this.takeBlocked()
        return blocked === undefined ? Effect.void : Effect.asVoid(this.awaitBlocked(blocked))
      }
    )
  }

  // Reads the record after `seq` and delivers it, until nothing is left out.
  private refill(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      let failures = 0
      while (true) {
        const read = yield* Effect.exit(
          this.log.read({ _tag: "AfterSeq", epoch: this.epoch, seq: this.seq, budget: refillBudget })
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
          if (result.reason === "restarted" || result.epoch !== this.epoch) this.restart(result.epoch, result.lastSeq)
          else yield* this.skipLost(result.reason)
          return
        }
        if (result.entries.length > 0) {
          this.deliver(seal(result.entries.map((e) => e.frame)), result.entries[0]!.seq)
          const blocked = this.takeBlocked()
          if (blocked !== undefined) yield* this.awaitBlocked(blocked)
        }
        if (result.complete || result.entries.length === 0) return
      }
    })
  }
}
