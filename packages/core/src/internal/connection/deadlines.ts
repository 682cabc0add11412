/**
 * A connection's deadlines: a heartbeat after `heartbeat` without any write,
 * and the end of a write that takes longer than `writeTimeout`.
 *
 * Both run on the clock's shared ticker (see `ticker`): no fiber or timer of
 * the connection's own. They are re-armed from the writer's timestamps, so a
 * busy connection costs nothing per write.
 *
 * - A heartbeat is queued only when nothing is waiting (any write would do)
 *   and never after the end.
 * - A write still under way at its deadline ends the connection as
 *   `client-gone` with a `timeout` `WriteError`, exactly at the deadline.
 *
 * Metric: `sluice_heartbeats_total`.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import { WriteError } from "../../Sink.ts"
import * as metrics from "../metrics.ts"
import * as ticker from "../ticker.ts"
import type { Mailbox } from "./mailbox.ts"
import { clientGone, type Ending } from "./outcome.ts"

/** What the deadlines read from the writer. @internal */
export interface Activity {
  readonly writing: boolean
  readonly writeStartedAt: number
  lastActivityAt: number
}

/** The connection's entry on the clock's ticker (the entry itself: no closure of its own). @internal */
export class Deadlines implements ticker.Entry {
  at = 0
  index = -1
  private readonly clock: Clock.Clock
  private readonly heartbeatMs: number | undefined
  private readonly writeTimeoutMs: number | undefined
  private readonly activity: Activity
  private readonly box: Mailbox
  private readonly ending: Ending

  constructor(
    clock: Clock.Clock,
    heartbeatMs: number | undefined,
    writeTimeoutMs: number | undefined,
    activity: Activity,
    box: Mailbox,
    ending: Ending
  ) {
    this.clock = clock
    this.heartbeatMs = heartbeatMs
    this.writeTimeoutMs = writeTimeoutMs
    this.activity = activity
    this.box = box
    this.ending = ending
  }

  start(): void {
    const first = this.fire(this.clock.currentTimeMillisUnsafe())
    if (first !== undefined) ticker.tickerFor(this.clock).schedule(this, first, this.ending.context)
  }

  stop(): void {
    if (this.index !== -1) ticker.tickerFor(this.clock).cancel(this)
  }

  /** Runs at or after the next due time; returns the one after (or none). */
  fire(now: number): number | undefined {
    if (this.ending.settled) return undefined
    const { activity, heartbeatMs, writeTimeoutMs } = this
    if (activity.writing && writeTimeoutMs !== undefined) {
      const deadline = activity.writeStartedAt + writeTimeoutMs
      if (now < deadline) return deadline
      const error = new WriteError({ reason: "timeout", detail: `a write did not finish within ${writeTimeoutMs} ms` })
      this.ending.settleUnsafe(clientGone(error))
      return undefined
    }
    let next = Number.POSITIVE_INFINITY
    if (heartbeatMs !== undefined) {
      const due = activity.lastActivityAt + heartbeatMs
      if (now >= due) {
        if (this.box.offerHeartbeatUnsafe()) {
          this.ending.heartbeats++
          metrics.heartbeatsSent.updateUnsafe(1, this.ending.context)
        }
        activity.lastActivityAt = now
        next = now + heartbeatMs
      } else {
        next = due
      }
    }
    // A write starting after this check has its deadline at least one
    // timeout away, so waking by then keeps the deadline exact.
    if (writeTimeoutMs !== undefined) next = Math.min(next, now + writeTimeoutMs)
    return next === Number.POSITIVE_INFINITY ? undefined : next
  }
}
