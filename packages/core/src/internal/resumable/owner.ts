/**
 * The owner's side of a stream: its producer runs on this node, in a scope
 * the collection owns, appending to the record, until it ends for one of
 * the five reasons; then the end is decided once (at the coordinator), the
 * end marker closes the record, and the record is kept for its retention.
 *
 * ```text
 * start ─▶ run ─┬─ producer ─send─▶ recorder ─append─▶ log
 *               ├─ lease: renew every lease/4 (stop requests come back with it)
 *               ├─ lifetime: expired          ├─ detach: no client for the grace period
 *               └─ watch: stop requested / ended elsewhere
 *   producer exit ─▶ end ─▶ coordinator.finish (once) ─▶ end marker ─▶ retention ─▶ delete
 * ```
 *
 * A requested end (stop, expiry, detach, lost lease, a bound) is noted
 * first and then the producer is interrupted, so the end names the request,
 * not the interruption; the producer's finalizers run once, before the
 * marker, so a client that sees the end knows they ran.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import type * as Log from "../../Log.ts"
import { forkLabelled } from "../fiberLabel.ts"
import * as metrics from "../metrics.ts"
import { completed, type End, expired, failed, kindOf, producerLost, stopped } from "./model.ts"
import { appendMarker, ask, listen, type Node, now, retried } from "./node.ts"
import { Recorder, type Sender } from "./recorder.ts"

/** A stream's settings, checked and in milliseconds. @internal */
export interface Settings {
  readonly maxEvents: number
  readonly maxBytes: number
  readonly lifetimeMillis: number | undefined
  readonly retentionMillis: number
  readonly detachMillis: number | undefined
  readonly failureMessage: ((cause: Cause.Cause<unknown>) => string) | undefined
}

const defaultFailureMessage = "The event stream failed"

/** @internal */
export class Owned {
  readonly id: string
  readonly record: string
  readonly log: Log.Log
  readonly recordScope: Scope.Closeable
  readonly settings: Settings
  readonly done: Deferred.Deferred<End>
  /** `ending`: the producer has stopped and the end is decided; nothing can change it any more. */
  phase: "running" | "ending" | "ended" = "running"
  /** The end something asked for (stop, expiry, detach, lost lease, a bound), before the producer stopped. */
  requested: End | undefined = undefined
  end: End | undefined = undefined
  endedAt = 0
  producer: Fiber.Fiber<void, unknown> | undefined = undefined
  /** Clients attached through this node. */
  clients = 0
  /** When the last client here left (the start counts as a client leaving). */
  leftAt: number
  /** When a client was last seen on another node (from the coordinator). */
  remoteSeenAt: number
  deleted = false

  constructor(
    id: string,
    record: string,
    log: Log.Log,
    recordScope: Scope.Closeable,
    settings: Settings,
    startedAt: number,
    done: Deferred.Deferred<End>
  ) {
    this.id = id
    this.record = record
    this.log = log
    this.recordScope = recordScope
    this.settings = settings
    this.leftAt = startedAt
    this.remoteSeenAt = startedAt
    this.done = done
  }

  /** Notes why the stream must end; `false` if an end was already noted or decided. */
  decide(end: End): boolean {
    if (this.phase !== "running" || this.requested !== undefined) return false
    this.requested = end
    return true
  }

  /** {@link decide}, then interrupts the producer (without waiting for it). */
  requestEnd(end: End): boolean {
    const first = this.decide(end)
    if (first) this.producer?.interruptUnsafe()
    return first
  }
}

// -----------------------------------------------------------------------------
// The run

/** How a stream ends when nothing asked for its end: from the producer's exit. */
const fromExit = (owned: Owned, exit: Exit.Exit<void, unknown> | undefined): End => {
  if (exit === undefined || Exit.isSuccess(exit)) return completed
  if (Cause.hasInterruptsOnly(exit.cause)) return producerLost
  let message = defaultFailureMessage
  try {
    const safe = owned.settings.failureMessage?.(exit.cause)
    if (typeof safe === "string" && safe !== "") message = safe
  } catch {
    // A renderer that throws costs its message, not the end.
  }
  return failed(message)
}

/**
 * Runs a stream's producer to its end, decides and records the end, keeps
 * the record for its retention, then deletes it. Forked into the
 * collection's fibers by `start`. `producer` brings its own scope and
 * services.
 *
 * @internal
 */
export const run = (
  node: Node,
  owned: Owned,
  producer: (sender: Sender) => Effect.Effect<void, unknown>
): Effect.Effect<void> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const running = yield* Scope.make()
      const recorder = new Recorder(
        owned.log,
        { maxEvents: owned.settings.maxEvents, maxBytes: owned.settings.maxBytes },
        (end) => owned.decide(end)
      )
      // A stop may have come between the claim and this fiber's start.
      if (owned.requested === undefined) {
        owned.producer = yield* forkLabelled(
          producer(recorder.sender),
          running,
          `sluice/resumable/${owned.id}/producer`
        )
      }
      yield* forkLabelled(lease(node, owned), running, `sluice/resumable/${owned.id}/lease`)
      if (owned.settings.lifetimeMillis !== undefined) {
        yield* forkLabelled(
          Effect.andThen(Effect.sleep(owned.settings.lifetimeMillis), Effect.sync(() => owned.requestEnd(expired))),
          running,
          `sluice/resumable/${owned.id}/lifetime`
        )
      }
      if (owned.settings.detachMillis !== undefined) {
        yield* forkLabelled(
          detach(node, owned, owned.settings.detachMillis),
          running,
          `sluice/resumable/${owned.id}/detach`
        )
      }
      yield* Scope.provide(
        listen(node, owned.id, (state) => {
          if (state === undefined) owned.requestEnd(producerLost)
          else if (state._tag === "Ended") owned.requestEnd(state.end)
          else if (state.stopRequested !== undefined) owned.requestEnd(stopped(state.stopRequested))
        }),
        running
      )
      const producerFiber = owned.producer
      if (producerFiber !== undefined) yield* Effect.exit(restore(Fiber.await(producerFiber)))
      // Stops the helpers, and the producer if this fiber was interrupted.
      yield* Scope.close(running, Exit.void)
      // Decided once the producer has stopped: a stop that comes later finds the stream ending.
      const end = owned.requested ?? fromExit(owned, producerFiber?.pollUnsafe())
      owned.phase = "ending"
      yield* conclude(node, owned, end)
      yield* restore(Effect.sleep(owned.settings.retentionMillis))
      yield* remove(node, owned)
    })
  )

/** Decides the end at the coordinator (once, whoever is first) and closes the record. */
const conclude = (node: Node, owned: Owned, end: End): Effect.Effect<void> =>
  Effect.gen(function*() {
    const finish = yield* Effect.result(retried(
      node,
      "finish",
      owned.id,
      node.coordinator.finish(owned.id, {
        end,
        retentionMillis: owned.settings.retentionMillis,
        owner: node.name
      })
    ))
    // Another node may have decided first (the lease ran out, a stop while it did): its end stands.
    const decided = finish._tag === "Success" && finish.success._tag === "Refused" &&
        finish.success.state?._tag === "Ended"
      ? finish.success.state.end
      : end
    yield* appendMarker(node, owned.log, decided)
    owned.phase = "ended"
    owned.end = decided
    owned.endedAt = now(node)
    node.running--
    node.endedCounts[kindOf(decided)]++
    yield* Metric.modify(metrics.resumableActive, -1)
    yield* Metric.update(metrics.resumableEndedBy(kindOf(decided)), 1)
    yield* Deferred.succeed(owned.done, decided)
    yield* evictRetained(node)
  })

/** Deletes the record of an ended stream (after its retention, or to make room). @internal */
export const remove = (node: Node, owned: Owned): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (owned.deleted) return Effect.void
    owned.deleted = true
    if (node.owned.get(owned.id) === owned) node.owned.delete(owned.id)
    return Effect.andThen(
      Scope.close(owned.recordScope, Exit.void),
      Effect.ignore(ask(node, "remove", owned.id, node.coordinator.remove(owned.id, owned.record)))
    )
  })

// Beyond `maxRetained` ended records, the oldest are deleted before their time.
const evictRetained = (node: Node): Effect.Effect<void> =>
  Effect.suspend(() => {
    const ended = [...node.owned.values()].filter((o) => o.phase === "ended")
    if (ended.length <= node.maxRetained) return Effect.void
    ended.sort((a, b) => a.endedAt - b.endedAt)
    return Effect.forEach(ended.slice(0, ended.length - node.maxRetained), (o) => remove(node, o), { discard: true })
  })

// -----------------------------------------------------------------------------
// Helpers of a running stream

/**
 * Renews the lease every lease/4 for lease/2. A stop requested elsewhere
 * comes back with the renewal; a lost lease ends the stream; a node that
 * could not renew for lease/2 gives up its producer (others may already
 * have declared it lost).
 */
const lease = (node: Node, owned: Owned): Effect.Effect<void> =>
  Effect.gen(function*() {
    const every = node.leaseMillis / 4
    let renewedAt = now(node)
    while (true) {
      yield* Effect.sleep(every)
      const renewal = yield* Effect.result(
        Effect.timeoutOption(node.coordinator.renew(owned.id, node.name, node.leaseMillis / 2), every)
      )
      if (renewal._tag === "Success" && renewal.success._tag === "Some") {
        const answer = renewal.success.value
        if (answer._tag === "Lost") {
          owned.requestEnd(answer.state?._tag === "Ended" ? answer.state.end : producerLost)
          return
        }
        renewedAt = now(node)
        owned.remoteSeenAt = Math.max(owned.remoteSeenAt, renewedAt - answer.state.idleMillis)
        if (answer.state.stopRequested !== undefined) owned.requestEnd(stopped(answer.state.stopRequested))
      }
      if (now(node) - renewedAt >= node.leaseMillis / 2) {
        owned.requestEnd(producerLost)
        return
      }
    }
  })

/**
 * The detach policy: ends the stream (stopped, detached) once no client has
 * been attached anywhere for `graceMillis`. Exact for clients of this node;
 * clients of other nodes are known through the coordinator (they touch it
 * every grace/4).
 */
const detach = (node: Node, owned: Owned, graceMillis: number): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (true) {
      const t = now(node)
      const seen = owned.clients > 0 ? t : Math.max(owned.leftAt, owned.remoteSeenAt)
      const deadline = seen + graceMillis
      if (t < deadline) {
        yield* Effect.sleep(deadline - t)
        continue
      }
      const state = yield* Effect.result(ask(node, "get", owned.id, node.coordinator.get(owned.id)))
      if (state._tag === "Success" && state.success?._tag === "Running") {
        owned.remoteSeenAt = Math.max(owned.remoteSeenAt, now(node) - state.success.idleMillis)
        if (owned.remoteSeenAt + graceMillis > now(node)) continue
      }
      if (owned.clients > 0) continue
      owned.requestEnd(stopped("stopped", true))
      return
    }
  })
