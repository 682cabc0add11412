/**
 * Streams owned by another node, seen from this one: the record opened from
 * the shared store, shared by the clients attached here, and a watcher that
 * makes sure they never wait for ever.
 *
 * ```text
 * clients here ─▶ readers ─▶ log (from the store) ◀── owner appends
 *                    ▲ abandon
 * watcher, every lease/4 (and on notifications): coordinator.get(id)
 *   Running, lease run out ─▶ finish(producer_lost, or stopped if asked) ─▶ end marker
 *   Running, detach policy ─▶ touch (clients are attached here)
 *   Ended for a lease, readers still waiting ─▶ write the marker the decider did not
 *   gone ─▶ waiting readers end (producer_lost)
 * ```
 *
 * The owner renews every lease/4 for lease/2, so after its node dies the
 * lease runs out within lease/2 and a watcher sees it within another
 * lease/4: clients here get `producer_lost` within the lease.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import type * as Log from "../../Log.ts"
import type * as Coordinator from "../../ResumableCoordinator.ts"
import { forkLabelled } from "../fiberLabel.ts"
import { type End, producerLost, stopped, UnknownStreamError } from "./model.ts"
import { appendMarker, ask, listen, type Node, now, openRecord } from "./node.ts"
import type { Reader } from "./reader.ts"

/** @internal */
export interface Remote {
  readonly id: string
  readonly record: string
  readonly log: Log.Log
  readonly scope: Scope.Closeable
  readonly readers: Set<Reader>
  refs: number
  /** When this node first saw the stream ended (ms). */
  endSeenAt: number | undefined
}

/**
 * The record of a stream owned elsewhere, opened once per node and shared by
 * its clients here; released when the last one's scope closes.
 *
 * @internal
 */
export const acquire = (
  node: Node,
  state: Coordinator.State
): Effect.Effect<Remote, Log.LogError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.uninterruptible(Effect.gen(function*() {
      const existing = node.remotes.get(state.record)
      if (existing !== undefined) {
        existing.refs++
        return existing
      }
      const scope = yield* Scope.make()
      const log = yield* Effect.onError(
        openRecord(node, state.record, state.bounds, scope),
        () => Scope.close(scope, Exit.void)
      )
      const remote: Remote = {
        id: state.id,
        record: state.record,
        log,
        scope,
        readers: new Set(),
        refs: 1,
        endSeenAt: undefined
      }
      node.remotes.set(state.record, remote)
      yield* forkLabelled(watch(node, remote), scope, `sluice/resumable/${state.id}/watch`)
      return remote
    })),
    (remote) =>
      Effect.suspend(() => {
        if (--remote.refs > 0) return Effect.void
        if (node.remotes.get(remote.record) === remote) node.remotes.delete(remote.record)
        return Scope.close(remote.scope, Exit.void)
      })
  )

const anyWaiting = (remote: Remote): boolean => {
  for (const reader of remote.readers) if (reader.waiting) return true
  return false
}

/** What a node other than the owner does for a stream whose lease ran out. */
const declare = (state: Coordinator.Running): End =>
  state.stopRequested !== undefined ? stopped(state.stopRequested) : producerLost

const watch = (node: Node, remote: Remote): Effect.Effect<void> =>
  Effect.gen(function*() {
    const wake = yield* Queue.dropping<void>(1)
    yield* listen(node, remote.id, () => {
      Queue.offerUnsafe(wake, undefined)
    })
    while (true) {
      const result = yield* Effect.result(ask(node, "get", remote.id, node.coordinator.get(remote.id)))
      const state = result._tag === "Success" ? result.success : "unknown"
      const every = yield* check(node, remote, state)
      yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(every))
    }
  }).pipe(Effect.scoped)

// One look at the coordinator; returns how long to wait before the next.
const check = (
  node: Node,
  remote: Remote,
  state: Coordinator.State | undefined | "unknown"
): Effect.Effect<number> =>
  Effect.gen(function*() {
    const every = node.leaseMillis / 4
    if (state === "unknown") return every
    if (state === undefined || state.record !== remote.record) {
      // Gone (deleted, or forgotten with its owner): nothing more will come.
      for (const reader of remote.readers) if (reader.waiting) reader.abandon(producerLost)
      return every
    }
    if (state._tag === "Running") {
      if (state.leaseExpired) {
        const end = declare(state)
        const finish = yield* Effect.result(
          ask(
            node,
            "finish",
            remote.id,
            node.coordinator.finish(remote.id, { end, retentionMillis: state.retentionMillis })
          )
        )
        if (finish._tag === "Success" && finish.success._tag === "Finished") {
          yield* appendMarker(node, remote.log, end)
        }
        return every
      }
      if (state.detachMillis !== undefined && remote.readers.size > 0) {
        yield* Effect.ignore(ask(node, "touch", remote.id, node.coordinator.touch(remote.id)))
        return Math.min(every, state.detachMillis / 4)
      }
      return every
    }
    // Ended: the decider writes the marker; if, a lease later, readers here
    // still wait for it, it never came (the decider died): write it.
    const t = now(node)
    remote.endSeenAt ??= t
    if (t - remote.endSeenAt >= node.leaseMillis && anyWaiting(remote)) {
      yield* appendMarker(node, remote.log, state.end)
      remote.endSeenAt = t
    }
    return every
  })

/** The answer of a stop made on a node that does not run the producer. @internal */
export type RemoteStop =
  | { readonly _tag: "Stopped"; readonly end: End }
  | { readonly _tag: "AlreadyEnded"; readonly end: End }
  | { readonly _tag: "Requested" }

const stoppedBy = (end: End, reason: string): boolean =>
  end._tag === "Stopped" && end.reason === reason && !end.detached

/**
 * Asks the owner to stop, then waits (at most two leases) for the end: the
 * owner carries it out within a lease/4 (at its next renewal, or at once
 * when notified); if its lease runs out meanwhile, this node ends the stream
 * itself, as stopped.
 *
 * @internal
 */
export const stop = (
  node: Node,
  id: string,
  reason: string
): Effect.Effect<RemoteStop, UnknownStreamError | Coordinator.CoordinatorError> =>
  Effect.gen(function*() {
    const first = yield* ask(node, "stop", id, node.coordinator.requestStop(id, reason))
    if (first === undefined) return yield* new UnknownStreamError({ id })
    if (first._tag === "Ended") return { _tag: "AlreadyEnded", end: first.end } as const
    const wake = yield* Queue.dropping<void>(1)
    yield* listen(node, id, () => {
      Queue.offerUnsafe(wake, undefined)
    })
    const deadline = now(node) + 2 * node.leaseMillis
    while (now(node) < deadline) {
      const state = yield* ask(node, "get", id, node.coordinator.get(id))
      if (state === undefined || state.record !== first.record) return yield* new UnknownStreamError({ id })
      if (state._tag === "Ended") {
        return stoppedBy(state.end, reason)
          ? { _tag: "Stopped", end: state.end } as const
          : { _tag: "AlreadyEnded", end: state.end } as const
      }
      if (state.leaseExpired) {
        const end = stopped(reason)
        const finish = yield* ask(
          node,
          "finish",
          id,
          node.coordinator.finish(id, { end, retentionMillis: state.retentionMillis })
        )
        if (finish._tag === "Finished") {
          yield* Effect.scoped(Effect.gen(function*() {
            const scope = yield* Effect.scope
            const log = yield* Effect.option(openRecord(node, state.record, state.bounds, scope))
            if (log._tag === "Some") yield* appendMarker(node, log.value, end)
          }))
          return { _tag: "Stopped", end } as const
        }
        continue
      }
      yield* Effect.raceFirst(Queue.take(wake), Effect.sleep(node.leaseMillis / 8))
    }
    return { _tag: "Requested" } as const
  }).pipe(Effect.scoped)
