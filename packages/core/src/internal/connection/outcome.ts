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

/** What the ending stops: the connection's parts, which return the events they held unwritten. @internal */
export interface Parts {
  stop(): number
}

/** Who is told first (a feeder: stop offering). @internal */
export interface EndListener {
  onEnd?: ((outcome: Connection.Outcome) => void) | undefined
}

// The metric's reason is the outcome's tag in the metric's own words.
const outcomeMetrics = {
  Completed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "completed" }),
  Failed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "failed" }),
  ClientGone: Metric.withAttributes(metrics.connectionOutcomes, { reason: "client-gone" }),
  Interrupted: Metric.withAttributes(metrics.connectionOutcomes, { reason: "interrupted" }),
  Closed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "closed" })
} as const

/**
 * The counters are the ending's own fields (no object of their own), and
 * what only some connections need is made on first use: the list of fibers
 * (a fed connection usually has none), the observers, and the deferred
 * outcome (only for whoever waits before the end).
 *
 * @internal
 */
export class Ending implements Stats {
  delivered = 0
  discarded = 0
  dropped = 0
  heartbeats = 0
  writes = 0
  bytes = 0
  settled = false
  /** The connection's running fibers, interrupted when it ends. */
  fibers: Array<Fiber.Fiber<unknown, unknown>> | undefined = undefined
  private done: Deferred.Deferred<Connection.Outcome> | undefined = undefined
  private result: Connection.Outcome | undefined = undefined
  // The outcome is published (every fiber has ended).
  private published = false
  private observers: Array<(outcome: Connection.Outcome) => void> | undefined = undefined
  readonly id: string
  readonly context: Context.Context<never>
  private readonly parts: Parts
  private readonly listener: EndListener | undefined

  /**
   * @param parts stopped first; they return the events they held unwritten.
   * @param listener the feeder, told before the observers.
   */
  constructor(id: string, context: Context.Context<never>, parts: Parts, listener: EndListener | undefined) {
    this.id = id
    this.context = context
    this.parts = parts
    this.listener = listener
    metrics.connectionsTotal.updateUnsafe(1, context)
    metrics.connectionsOpen.modifyUnsafe(1, context)
  }

  /** A copy of the counters. */
  stats(): Connection.Stats {
    return {
      delivered: this.delivered,
      discarded: this.discarded,
      dropped: this.dropped,
      heartbeats: this.heartbeats,
      writes: this.writes,
      bytes: this.bytes
    }
  }

  /** Tracks a fiber of the connection until it ends. */
  track(fiber: Fiber.Fiber<unknown, unknown>): void {
    const fibers = (this.fibers ??= [])
    fibers.push(fiber)
    fiber.addObserver(() => {
      const i = fibers.indexOf(fiber)
      if (i !== -1) fibers.splice(i, 1)
    })
  }

  /** Ends the connection as `ended` says: `false` when it had already ended. */
  settleUnsafe(ended: Ended): boolean {
    if (this.settled) return false
    this.settled = true
    this.discarded += this.parts.stop()
    const result: Connection.Outcome = {
      ...ended,
      id: this.id,
      delivered: this.delivered,
      discarded: this.discarded,
      dropped: this.dropped,
      heartbeats: this.heartbeats,
      writes: this.writes,
      bytes: this.bytes
    }
    this.result = result
    metrics.connectionsOpen.modifyUnsafe(-1, this.context)
    metrics.eventsDiscarded.updateUnsafe(result.discarded, this.context)
    outcomeMetrics[result._tag].updateUnsafe(1, this.context)
    if (result._tag === "ClientGone" && result.error.reason === "timeout") {
      metrics.writeTimeouts.updateUnsafe(1, this.context)
    }
    this.listener?.onEnd?.(result)
    // Published at once when no other fiber of the connection runs: the
    // observers then see it published, and whoever waits for the outcome
    // resumes after the observers have run.
    const self = Fiber.getCurrent()
    const others = this.fibers === undefined
      ? undefined
      : this.fibers.filter((f) => f !== self && f.pollUnsafe() === undefined)
    const now = others === undefined || others.length === 0
    if (now) this.published = true
    const observers = this.observers
    this.observers = undefined
    if (observers !== undefined) { for (const observer of observers) observer(result) }
    if (now) this.publish(result)
    else this.publishAfter(others!, result, self)
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

  /** Waits for the end (once every fiber of the connection has ended). */
  get outcome(): Effect.Effect<Connection.Outcome> {
    if (this.published) return Effect.succeed(this.result!)
    return Deferred.await(this.done ??= Deferred.makeUnsafe<Connection.Outcome>())
  }

  private publish(result: Connection.Outcome) {
    this.published = true
    if (this.done !== undefined) Deferred.doneUnsafe(this.done, Effect.succeed(result))
  }

  // The other fibers are interrupted; the outcome is published once they have ended.
  private publishAfter(
    others: ReadonlyArray<Fiber.Fiber<unknown, unknown>>,
    result: Connection.Outcome,
    self: Fiber.Fiber<unknown, unknown> | undefined
  ) {
    let pending = others.length
    for (const fiber of others) {
      fiber.addObserver(() => {
        if (--pending === 0) this.publish(result)
      })
      fiber.interruptUnsafe(self?.id)
    }
  }
}
