/**
 * The in-memory coordinator: the states of resumable streams in a map of
 * this process, on the Effect `Clock`. Every collection made without a
 * coordinator in context gets its own; collections that share one (through
 * `ResumableCoordinator.layerMemory`) behave as nodes of one cluster, which
 * is how the cross-node rules are tested without Redis.
 *
 * Each operation is one synchronous step, so the checks and the changes of
 * a claim, a finish or a renewal can never interleave with another's. A
 * state disappears on its own once its time is up (`ttl` after the claim
 * while running, the retention after the end), so a node that died leaves
 * nothing behind for ever.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Coordinator from "../../ResumableCoordinator.ts"
import type { End, Ended, Running, State } from "./model.ts"
import { CoordinatorTypeId } from "./model.ts"

interface Entry {
  state: Running | Ended
  /** Clock time (ms) at which the entry is forgotten. */
  expiresAt: number
  /** Lease expiry of a running stream (ms). */
  leaseUntil: number
}

/** @internal */
export const makeUnsafe = (clock: Clock.Clock): Coordinator.Coordinator["Service"] => {
  const entries = new Map<string, Entry>()
  const listeners = new Map<string, Set<(state: State | undefined) => void>>()
  const now = () => clock.currentTimeMillisUnsafe()

  // The entry, unless its time is up (then it is forgotten now).
  const live = (id: string, t: number): Entry | undefined => {
    const entry = entries.get(id)
    if (entry === undefined) return undefined
    if (t >= entry.expiresAt) {
      entries.delete(id)
      return undefined
    }
    return entry
  }
  const view = (entry: Entry | undefined, t: number): State | undefined => {
    if (entry === undefined) return undefined
    const state = entry.state
    if (state._tag === "Ended") return state
    return {
      ...state,
      leaseExpiresAt: entry.leaseUntil,
      leaseExpired: t >= entry.leaseUntil,
      idleMillis: Math.max(0, t - state.lastSeenAt)
    }
  }
  const notify = (id: string, state: State | undefined) => {
    const set = listeners.get(id)
    if (set === undefined) return
    // A copy: a listener may remove itself.
    for (const listener of Array.from(set)) listener(state)
  }
  // Prunes expired entries now and then, so ids nobody asks about again do
  // not stay in the map.
  let sinceSweep = 0
  const sweep = (t: number) => {
    if (++sinceSweep < 256) return
    sinceSweep = 0
    for (const [id, entry] of entries) if (t >= entry.expiresAt) entries.delete(id)
  }

  const claim: Coordinator.Coordinator["Service"]["claim"] = (id, request) =>
    Effect.sync(() => {
      const t = now()
      sweep(t)
      const existing = live(id, t)
      if (existing !== undefined) return { _tag: "Exists", state: view(existing, t)! }
      const state: Running = {
        _tag: "Running",
        id,
        owner: request.owner,
        record: request.record,
        startedAt: t,
        leaseExpiresAt: t + request.leaseMillis,
        leaseExpired: false,
        stopRequested: undefined,
        lastSeenAt: t,
        idleMillis: 0,
        detachMillis: request.detachMillis,
        retentionMillis: request.retentionMillis,
        bounds: request.bounds
      }
      entries.set(id, { state, expiresAt: t + request.ttlMillis, leaseUntil: t + request.leaseMillis })
      return { _tag: "Claimed", state }
    })

  const renew: Coordinator.Coordinator["Service"]["renew"] = (id, owner, leaseMillis) =>
    Effect.sync(() => {
      const t = now()
      const entry = live(id, t)
      const state = view(entry, t)
      if (entry === undefined || state === undefined || state._tag !== "Running" || state.owner !== owner) {
        return { _tag: "Lost", state }
      }
      // A lease that ran out is lost: another node may already have
      // declared the producer lost on the strength of it.
      if (state.leaseExpired) return { _tag: "Lost", state }
      entry.leaseUntil = t + leaseMillis
      return { _tag: "Renewed", state: view(entry, t) as Running }
    })

  const touch: Coordinator.Coordinator["Service"]["touch"] = (id) =>
    Effect.sync(() => {
      const t = now()
      const entry = live(id, t)
      if (entry !== undefined && entry.state._tag === "Running") {
        entry.state = { ...entry.state, lastSeenAt: t }
      }
    })

  const requestStop: Coordinator.Coordinator["Service"]["requestStop"] = (id, reason) =>
    Effect.sync(() => {
      const t = now()
      const entry = live(id, t)
      if (entry === undefined) return undefined
      if (entry.state._tag === "Running" && entry.state.stopRequested === undefined) {
        entry.state = { ...entry.state, stopRequested: reason }
        const state = view(entry, t)
        notify(id, state)
        return state
      }
      return view(entry, t)
    })

  const finish: Coordinator.Coordinator["Service"]["finish"] = (id, request) =>
    Effect.sync(() => {
      const t = now()
      const entry = live(id, t)
      const state = view(entry, t)
      if (entry === undefined || state === undefined || state._tag !== "Running") {
        return { _tag: "Refused", state }
      }
      const allowed = request.owner === undefined ? state.leaseExpired : state.owner === request.owner
      if (!allowed) return { _tag: "Refused", state }
      const ended: Ended = {
        _tag: "Ended",
        id,
        record: state.record,
        end: request.end as End,
        endedAt: t,
        bounds: state.bounds
      }
      entry.state = ended
      entry.expiresAt = t + request.retentionMillis
      notify(id, ended)
      return { _tag: "Finished", state: ended }
    })

  const get: Coordinator.Coordinator["Service"]["get"] = (id) => Effect.sync(() => view(live(id, now()), now()))

  const remove: Coordinator.Coordinator["Service"]["remove"] = (id, record) =>
    Effect.sync(() => {
      const entry = entries.get(id)
      if (entry !== undefined && entry.state.record === record) {
        entries.delete(id)
        notify(id, undefined)
      }
    })

  const watch: Coordinator.Coordinator["Service"]["watch"] = (id, listener) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        let set = listeners.get(id)
        if (set === undefined) {
          set = new Set()
          listeners.set(id, set)
        }
        set.add(listener)
      }),
      () =>
        Effect.sync(() => {
          const set = listeners.get(id)
          set?.delete(listener)
          if (set?.size === 0) listeners.delete(id)
        })
    ) as Effect.Effect<void, never, Scope.Scope>

  return { [CoordinatorTypeId]: CoordinatorTypeId, claim, renew, touch, requestStop, finish, get, remove, watch }
}
