/**
 * The fan-out: a hub's subscribers, and the hand-out of each burst to them.
 *
 * Each burst (from the `tail`, in order) is offered, as the very same sealed
 * burst (see `burst`), to every live subscriber's mailbox (one call per
 * subscriber per burst), from the subscriber's own starting point. A
 * subscriber that refuses is handled by its strategy: removed when its
 * connection is closing, disconnected with `SlowConsumerError` under
 * `disconnect`, left to its connection's drop counting under `sliding` and
 * `dropping`, and kept aside as *blocked* under `suspend`, for whoever
 * delivered the burst to wait for (a gated publisher, or the tail's
 * catch-up).
 *
 * What it guarantees:
 * - **Each entry once**: the fan-out tracks the position it has delivered
 *   (`epoch`, `seq`); entries at or before it are not delivered again.
 * - **Nothing lost without a signal**: when the record's epoch changes, or
 *   entries are gone for good, every subscriber gets a gap signal whose id
 *   is where it now stands (`restart`, `lost`).
 * - Subscribers whose replay is being read from a remote record get the
 *   bursts of that time kept aside ({@link FanOut.beginHandOff}).
 *
 * Metrics: `sluice_hub_deliveries_total`, `sluice_hub_slow_consumers_total{strategy}`,
 * `sluice_hub_subscribers`.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { type Burst, seal } from "../burst.ts"
import type { Fed } from "../connection.ts"
import * as ids from "../log/ids.ts"
import * as metrics from "../metrics.ts"
import type { Config } from "./config.ts"
import { SlowConsumerError } from "./errors.ts"
import { gapFrame, HandOff } from "./replay.ts"
import { type Member, SubscriberSet } from "./subscribers.ts"

/** The close reason a hub gives the connection of a slow consumer (the outcome makes it `SlowConsumer`). @internal */
export const slowConsumerReason = "slow_consumer"

/** A registered subscriber. @internal */
export interface Subscriber extends Member {
  readonly conn: Fed
  readonly policy: Hub.Strategy
  readonly timeoutMillis: number
  slow: SlowConsumerError | undefined
  /** The first sequence number it gets live (0: every one). */
  fromSeq: number
}

/** A backpressured subscriber that refused `frames[from..]`. @internal */
export interface Blocked {
  readonly sub: Subscriber
  readonly frames: Burst
  readonly from: number
}

const slowConsumers = {
  disconnect: Metric.withAttributes(metrics.hubSlowConsumers, { strategy: "disconnect" }),
  suspend: Metric.withAttributes(metrics.hubSlowConsumers, { strategy: "suspend" })
} as const

// Entries a hand-off keeps aside (at most the replay budget) before it reads
// the record again instead.
const handOffLimit = 4_096

/** @internal */
export class FanOut {
  readonly members = new SubscriberSet<Subscriber>()
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
  private readonly deliveries: { count: number }
  private readonly cfg: Config
  private readonly clock: Clock.Clock
  private readonly context: Context.Context<never>

  /** @param start the log's position: delivery goes on after it. */
  constructor(cfg: Config, start: Log.Position, clock: Clock.Clock, context: Context.Context<never>) {
    this.cfg = cfg
    this.clock = clock
    this.context = context
    this.deliveries = metrics.hubDeliveriesCell(context)
    this.epoch = start.epoch
    this.seq = start.seq
  }

  add(sub: Subscriber): void {
    this.members.add(sub)
    if (sub.policy === "suspend") this.backpressured++
    metrics.hubSubscribers.modifyUnsafe(1, this.context)
  }

  remove(sub: Subscriber): void {
    if (!this.members.remove(sub)) return
    if (sub.policy === "suspend") this.backpressured--
    metrics.hubSubscribers.modifyUnsafe(-1, this.context)
    if (this.members.size === 0) this.onEmpty?.()
  }

  /** Ends a subscriber that could not keep up (its connection ends now). */
  disconnect(sub: Subscriber, policy: "disconnect" | "suspend", waitedMillis?: number): void {
    sub.slow = new SlowConsumerError({
      subscriber: sub.conn.id,
      strategy: policy,
      capacity: sub.conn.capacity,
      ...(waitedMillis === undefined ? {} : { waitedMillis })
    })
    // `false` when it had already ended for another reason.
    if (sub.conn.killUnsafe(slowConsumerReason)) slowConsumers[policy].updateUnsafe(1, this.context)
    else sub.slow = undefined
    this.remove(sub)
  }

  // ---------------------------------------------------------------------------
  // Delivery

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
      case "suspend":
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
            this.disconnect(sub, "suspend", waited())
            return 0
          }
          if (accepted.value) return 1
          this.remove(sub)
          return 0
        }),
        Effect.onInterrupt(() => Effect.sync(() => this.disconnect(sub, "suspend", waited())))
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
  restart(epoch: string, seq: number): void {
    const lastEventId = ids.format(this.epoch, this.seq)
    this.epoch = epoch
    this.seq = seq
    this.broadcast(gapFrame(this.cfg.gapEvent, "restarted", lastEventId, ids.format(epoch, seq)))
    for (const sub of this.members.begin()) sub.fromSeq = 0
    this.members.end()
    if (this.handOffs !== undefined) { for (const h of this.handOffs) h.lose("restarted") }
  }

  /** Entries up to `seq` are gone for good: everyone is told, and delivery goes on after `seq`. */
  lost(reason: Hub.GapReason, seq: number): void {
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
}
