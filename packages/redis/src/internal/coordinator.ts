/**
 * The resumable coordinator of one process over Redis: each operation one
 * script (see `coordinatorScripts.ts`) with a deadline, and one Pub/Sub
 * subscription per process that passes stop requests, ends and removals to
 * the `watch` listeners of this process.
 *
 * ```text
 * claim / renew / touch / requestStop / finish / get / remove ──EVALSHA (deadline)──▶ <prefix>:r:{id}
 * requestStop / finish / remove ──PUBLISH <prefix>:r {"i","n","s"}──▶ every process ─▶ its listeners of id
 * ```
 *
 * @internal
 */
import { ResumableCoordinator } from "@sluice/core"
import * as Effect from "effect/Effect"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import type { RedisUnavailableError } from "../RedisConnection.ts"
import * as channel from "./channel.ts"
import * as scripts from "./coordinatorScripts.ts"
import { describeCause } from "./errors.ts"
import * as keys from "./keys.ts"
import * as metrics from "./metrics.ts"

/** Validated settings. @internal */
export interface Config {
  readonly prefix: string
  readonly address: string
  readonly node: string
  readonly timeoutMillis: number
  readonly pingMillis: number
  readonly unavailable: (operation: string, detail: string) => RedisUnavailableError
}

type Service = ResumableCoordinator.Coordinator["Service"]
type Operation = ResumableCoordinator.CoordinatorError["operation"]
type Listener = (state: ResumableCoordinator.State | undefined) => void

// -----------------------------------------------------------------------------
// Reading a state

const fieldsOf = (flat: ReadonlyArray<string | number>, from: number): Map<string, string> => {
  const fields = new Map<string, string>()
  for (let i = from; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]))
  return fields
}

const boundsOf = (json: string | undefined): ResumableCoordinator.RecordBounds => {
  const b = JSON.parse(json ?? "{}") as { maxEvents: number; maxBytes: number; maxAgeMillis: number | null }
  return {
    maxEvents: b.maxEvents,
    maxBytes: b.maxBytes,
    maxAgeMillis: b.maxAgeMillis === null ? Number.POSITIVE_INFINITY : b.maxAgeMillis
  }
}

/** JSON of bounds (an age that is not finite as null). @internal */
export const boundsJson = (bounds: ResumableCoordinator.RecordBounds): string =>
  JSON.stringify({
    maxEvents: bounds.maxEvents,
    maxBytes: bounds.maxBytes,
    maxAgeMillis: Number.isFinite(bounds.maxAgeMillis) ? bounds.maxAgeMillis : null
  })

/**
 * The state a hash's fields describe at Redis time `now`, `undefined` for
 * none (or fields that are not a state: a key of someone else's).
 *
 * @internal
 */
export const stateOf = (fields: Map<string, string>, now: number): ResumableCoordinator.State | undefined => {
  const status = fields.get("st")
  const id = fields.get("id") ?? ""
  const record = fields.get("rec") ?? ""
  try {
    if (status === "ended") {
      return {
        _tag: "Ended",
        id,
        record,
        end: JSON.parse(fields.get("end") ?? "null") as ResumableCoordinator.End,
        endedAt: Number(fields.get("ea")),
        bounds: boundsOf(fields.get("b"))
      }
    }
    if (status !== "running") return undefined
    const leaseExpiresAt = Number(fields.get("lu"))
    const lastSeenAt = Number(fields.get("ls"))
    const detach = fields.get("dm") ?? ""
    return {
      _tag: "Running",
      id,
      owner: fields.get("o") ?? "",
      record,
      startedAt: Number(fields.get("sa")),
      leaseExpiresAt,
      leaseExpired: now >= leaseExpiresAt,
      stopRequested: fields.get("sr"),
      lastSeenAt,
      idleMillis: Math.max(0, now - lastSeenAt),
      detachMillis: detach === "" ? undefined : Number(detach),
      retentionMillis: Number(fields.get("rm")),
      bounds: boundsOf(fields.get("b"))
    }
  } catch {
    return undefined
  }
}

const replyState = (reply: scripts.Reply) => stateOf(fieldsOf(reply, 2), Number(reply[1]))

// -----------------------------------------------------------------------------
// The service

/** @internal */
export const make = (
  redis: Redis.Redis["Service"],
  config: Config
): Effect.Effect<Service, RedisUnavailableError, Scope.Scope> =>
  Effect.gen(function*() {
    const updates = keys.resumableChannel(config.prefix)
    const keyOf = (id: string) => keys.resumable(config.prefix, id)
    const context = yield* Effect.context<never>()

    // Every call: the server's answer within the deadline, or a CoordinatorError naming the address.
    const call = <A>(operation: Operation, id: string, effect: Effect.Effect<A, unknown>) =>
      effect.pipe(
        Effect.mapError((cause) =>
          new ResumableCoordinator.CoordinatorError({
            operation,
            id,
            reason: `Redis at ${config.address} is unavailable: ${describeCause(cause)}`,
            cause
          })
        ),
        Effect.timeoutOrElse({
          duration: config.timeoutMillis,
          orElse: () =>
            Effect.fail(
              new ResumableCoordinator.CoordinatorError({
                operation,
                id,
                reason: `Redis at ${config.address} did not answer within ${config.timeoutMillis} ms` +
                  (operation === "claim" || operation === "finish" || operation === "stop"
                    ? " (it may still have been applied)"
                    : "")
              })
            )
        })
      )

    const evalClaim = redis.eval(scripts.claim)
    const evalRenew = redis.eval(scripts.renew)
    const evalTouch = redis.eval(scripts.touch)
    const evalStop = redis.eval(scripts.requestStop)
    const evalFinish = redis.eval(scripts.finish)
    const evalGet = redis.eval(scripts.get)
    const evalRemove = redis.eval(scripts.remove)

    // This process's listeners, by stream id.
    const listeners = new Map<string, Set<Listener>>()
    const tell = (id: string, state: ResumableCoordinator.State | undefined) => {
      const set = listeners.get(id)
      if (set === undefined) return
      // A copy: a listener may remove itself.
      for (const listener of Array.from(set)) {
        try {
          listener(state)
        } catch {
          // Listeners must not throw; one that does costs only its own notification.
        }
      }
    }
    const onMessage = (raw: string) => {
      let message: { readonly i?: unknown; readonly n?: unknown; readonly s?: unknown }
      try {
        message = JSON.parse(raw)
      } catch {
        return
      }
      if (typeof message.i !== "string" || !listeners.has(message.i)) return
      const state = Array.isArray(message.s) ? stateOf(fieldsOf(message.s, 0), Number(message.n)) : undefined
      metrics.coordinatorNotifications.updateUnsafe(1, context)
      tell(message.i, state)
    }

    const get: Service["get"] = (id) => Effect.map(call("get", id, evalGet(keyOf(id))), replyState)

    // After a new subscription, what was published meanwhile is lost: every
    // watched stream is read once, and its listeners hear of a stop request
    // or an end they may have missed (the listeners also poll).
    const refresh = Effect.suspend(() =>
      Effect.forEach(
        Array.from(listeners.keys()),
        (id) =>
          Effect.matchEffect(get(id), {
            onFailure: () => Effect.void,
            onSuccess: (state) =>
              Effect.sync(() => {
                if (state === undefined || state._tag === "Ended" || state.stopRequested !== undefined) tell(id, state)
              })
          }),
        { concurrency: 8, discard: true }
      )
    )
    const subscription = yield* channel.run(redis, {
      channel: updates,
      node: config.node,
      pingMillis: config.pingMillis,
      onMessage,
      onSubscribed: (first) => {
        if (first) return
        metrics.resubscriptions.updateUnsafe(1, context)
        Effect.runForkWith(context)(refresh)
      }
    })
    yield* subscription.ready.pipe(
      Effect.timeoutOrElse({
        duration: config.timeoutMillis,
        orElse: () =>
          Effect.fail(
            config.unavailable(`subscribe to ${updates}`, `no subscription within ${config.timeoutMillis} ms`)
          )
      })
    )

    const claim: Service["claim"] = (id, request) =>
      Effect.map(
        call(
          "claim",
          id,
          evalClaim(keyOf(id), {
            id,
            owner: request.owner,
            record: request.record,
            leaseMillis: Math.max(1, Math.ceil(request.leaseMillis)),
            ttlMillis: Number.isFinite(request.ttlMillis) ? Math.max(1, Math.ceil(request.ttlMillis)) : 0,
            detachMillis: request.detachMillis === undefined ? "" : String(Math.ceil(request.detachMillis)),
            retentionMillis: Math.max(0, Math.ceil(request.retentionMillis)),
            bounds: boundsJson(request.bounds)
          })
        ),
        (reply): ResumableCoordinator.Claim => {
          const state = replyState(reply)
          if (reply[0] === "claimed" && state?._tag === "Running") return { _tag: "Claimed", state }
          // A hash that is not a state (another program's key) is no claim of ours either.
          return { _tag: "Exists", state: state ?? foreign(id, request) }
        }
      )

    const renew: Service["renew"] = (id, owner, leaseMillis) =>
      Effect.map(
        call("renew", id, evalRenew(keyOf(id), owner, Math.max(1, Math.ceil(leaseMillis)))),
        (reply): ResumableCoordinator.Renewal => {
          const state = replyState(reply)
          return reply[0] === "renewed" && state?._tag === "Running"
            ? { _tag: "Renewed", state }
            : { _tag: "Lost", state }
        }
      )

    const touch: Service["touch"] = (id) => Effect.asVoid(call("touch", id, evalTouch(keyOf(id))))

    const requestStop: Service["requestStop"] = (id, reason) =>
      Effect.map(call("stop", id, evalStop(keyOf(id), updates, id, reason)), replyState)

    const finish: Service["finish"] = (id, request) =>
      Effect.map(
        call(
          "finish",
          id,
          evalFinish(keyOf(id), updates, id, {
            end: JSON.stringify(request.end),
            retentionMillis: Math.max(0, Math.ceil(request.retentionMillis)),
            owner: request.owner ?? ""
          })
        ),
        (reply): ResumableCoordinator.Finish => {
          const state = replyState(reply)
          return reply[0] === "finished" && state?._tag === "Ended"
            ? { _tag: "Finished", state }
            : { _tag: "Refused", state }
        }
      )

    const remove: Service["remove"] = (id, record) =>
      Effect.asVoid(call("remove", id, evalRemove(keyOf(id), updates, id, record)))

    const watch: Service["watch"] = (id, listener) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let set = listeners.get(id)
          if (set === undefined) listeners.set(id, set = new Set())
          set.add(listener)
        }),
        () =>
          Effect.sync(() => {
            const set = listeners.get(id)
            set?.delete(listener)
            if (set?.size === 0) listeners.delete(id)
          })
      )

    return {
      [ResumableCoordinator.TypeId]: ResumableCoordinator.TypeId,
      claim,
      renew,
      touch,
      requestStop,
      finish,
      get,
      remove,
      watch
    }
  })

// The id's key holds something that is not a stream's state: it is taken,
// and reported as ended (failed), so no node runs a producer for it.
const foreign = (id: string, request: ResumableCoordinator.ClaimRequest): ResumableCoordinator.State => ({
  _tag: "Ended",
  id,
  record: "",
  end: { _tag: "Failed", message: "the stream's id is taken in Redis by a key that is not a stream" },
  endedAt: 0,
  bounds: request.bounds
})
