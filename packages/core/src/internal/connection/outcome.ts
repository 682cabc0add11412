/**
 * How a connection ends: decided once, by whoever comes first (the writer,
 * the deadlines, the handle, the scope), as an `Outcome` value.
 *
 * - The decision is synchronous, so a hub can end a slow subscriber in the
 *   middle of a fan-out without waiting on it; later attempts see it made and
 *   do nothing.
 * - What was accepted and never written is counted as `discarded`; the
 *   mailbox then refuses everything (a producer blocked on it is released).
 * - The feeder's `onEnd`, then the observers, are called at once; the
 *   outcome effect resolves once the connection's other fibers have ended,
 *   so whoever sees it knows the producer's finalizers have run.
 *
 * Metrics: `sluice_connections_open`, `sluice_connections_total`,
 * `sluice_connection_outcomes_total{reason}`, `sluice_events_discarded_total`,
 * `sluice_write_timeouts_total`.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import type * as Connection from "../../Connection.ts"
import type { WriteError } from "../../Sink.ts"
import * as metrics from "../metrics.ts"

/**
 * What ended a connection: its outcome without the id and the counters,
 * which the ending adds.
 *
 * @internal
 */
export type Ended =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "ClientGone"; readonly error: WriteError }
  | { readonly _tag: "Interrupted" }
  | { readonly _tag: "Closed"; readonly reason: string }

/** @internal */
export const completed: Ended = { _tag: "Completed" }

/** @internal */
export const failed = (cause: Cause.Cause<unknown>): Ended => ({ _tag: "Failed", cause })

/** @internal */
export const clientGone = (error: WriteError): Ended => ({ _tag: "ClientGone", error })

/** @internal */
export const interrupted: Ended = { _tag: "Interrupted" }

/** @internal */
export const closed = (reason: string): Ended => ({ _tag: "Closed", reason })

/** Counters of a live connection. @internal */
export interface Stats {
  delivered: number
  discarded: number
  dropped: number
  heartbeats: number
  writes: number
  bytes: number
}

// The metric's reason is the outcome's tag in the metric's own words.
const outcomeMetrics = {
  Completed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "completed" }),
  Failed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "failed" }),
  ClientGone: Metric.withAttributes(metrics.connectionOutcomes, { reason: "client-gone" }),
  Interrupted: Metric.withAttributes(metrics.connectionOutcomes, { reason: "interrupted" }),
  Closed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "closed" })
} as const

/** @internal */
export class Ending {
  readonly stats: Stats = { delivered: 0, discarded: 0, dropped: 0, heartbeats: 0, writes: 0, bytes: 0 }
  settled = false
  /** The connection's fibers, interrupted when it ends. */
  readonly fibers: Array<Fiber.Fiber<unknown, unknown>> = []
  private readonly done = Deferred.makeUnsafe<Connection.Outcome>()
  private result: Connection.Outcome | undefined = undefined
  private observers: Array<(outcome: Connection.Outcome) => void> | undefined = undefined
  private readonly id: string
  private readonly context: Context.Context<never>
  private readonly stop: () => number
  private readonly onEnd: ((outcome: Connection.Outcome) => void) | undefined

  /**
   * @param stop stops the connection's parts and returns the events they
   *   held unwritten.
   * @param onEnd the feeder's hook, called first.
   */
  constructor(
    id: string,
    context: Context.Context<never>,
    stop: () => number,
    onEnd: ((outcome: Connection.Outcome) => void) | undefined
  ) {
    this.id = id
    this.context = context
    this.stop = stop
    this.onEnd = onEnd
    metrics.connectionsTotal.updateUnsafe(1, context)
    metrics.connectionsOpen.modifyUnsafe(1, context)
  }

  /** Ends the connection as `ended` says: `false` when it had already ended. */
  settleUnsafe(ended: Ended): boolean {
    if (this.settled) return false
    this.settled = true
    this.stats.discarded += this.stop()
    const stats = this.stats
    const result: Connection.Outcome = {
      ...ended,
      id: this.id,
      delivered: stats.delivered,
      discarded: stats.discarded,
      dropped: stats.dropped,
      heartbeats: stats.heartbeats,
      writes: stats.writes,
      bytes: stats.bytes
    }
    this.result = result
    metrics.connectionsOpen.modifyUnsafe(-1, this.context)
    metrics.eventsDiscarded.updateUnsafe(result.discarded, this.context)
    outcomeMetrics[result._tag].updateUnsafe(1, this.context)
    if (result._tag === "ClientGone" && result.error.reason === "timeout") {
      metrics.writeTimeouts.updateUnsafe(1, this.context)
    }
    this.onEnd?.(result)
    const observers = this.observers
    this.observers = undefined
    if (observers !== undefined) { for (const observer of observers) observer(result) }
    this.publishAfterFibers(result)
    return true
  }

  settle(ended: Ended): Effect.Effect<void> {
    return Effect.sync(() => {
      this.settleUnsafe(ended)
    })
  }

  /** Calls `observer` once with the outcome when it is decided (at once if it is). */
  addObserver(observer: (outcome: Connection.Outcome) => void): () => void {
    if (this.result !== undefined) {
      observer(this.result)
      return () => {}
    }
    ;(this.observers ??= []).push(observer)
    return () => {
      const i = this.observers?.indexOf(observer) ?? -1
      if (i >= 0) this.observers!.splice(i, 1)
    }
  }

  /** Waits for the end. */
  readonly outcome: Effect.Effect<Connection.Outcome> = Deferred.await(this.done)

  // The outcome is published once the other fibers have ended.
  private publishAfterFibers(result: Connection.Outcome) {
    const self = Fiber.getCurrent()
    const others = this.fibers.filter((f) => f !== self && f.pollUnsafe() === undefined)
    let pending = others.length
    const publish = () => Deferred.doneUnsafe(this.done, Effect.succeed(result))
    if (pending === 0) publish()
    for (const fiber of others) {
      fiber.addObserver(() => {
        if (--pending === 0) publish()
      })
      fiber.interruptUnsafe(self?.id)
    }
  }
}
