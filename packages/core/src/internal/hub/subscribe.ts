/**
 * Subscribing: a connection the hub feeds, registered with the fan-out in
 * the same synchronous step that fixes its replay (see `replay`).
 *
 * The subscriber's stream is its preamble, then the gap signal (if any),
 * then the replayed entries, then live ones. Its end (for any reason)
 * removes it from the fan-out at once; a slow consumer's outcome carries the
 * typed `SlowConsumer`.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import type { Event, Frame } from "../../SseEvent.ts"
import * as connection from "../connection.ts"
import { frameBytes } from "../encoder.ts"
import type { Config } from "./config.ts"
import { type FanOut, slowConsumerReason, type Subscriber } from "./fanOut.ts"
import * as replay from "./replay.ts"

const defaultNotice = (missed: number): Event => ({
  _tag: "Event",
  event: "events_dropped",
  data: JSON.stringify({ missed })
})

const toMillis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))
// Parsed once, not per subscriber.
const defaultBackpressureTimeoutMillis = toMillis("5 seconds")

/** What a subscribe works with. @internal */
export interface Parts {
  readonly cfg: Config
  readonly log: Log.Log
  readonly fanOut: FanOut
  readonly clock: Clock.Clock
  readonly context: Context.Context<never>
}

/** A replay read from a remote record, and the live entries kept aside meanwhile. */
interface Remote {
  readonly handOff: replay.HandOff
  readonly found: replay.Found
}

// Reads a remote record after the client's id; the live entries of that
// time are kept aside by a hand-off (ended with the subscription's scope, if
// the connection never starts).
const readRemote = (
  { cfg, context, fanOut, log }: Parts,
  lastId: string
): Effect.Effect<Remote, Log.LogError, Scope.Scope> =>
  Effect.gen(function*() {
    const handOff = fanOut.beginHandOff()
    yield* Effect.addFinalizer(() => Effect.sync(() => fanOut.endHandOff(handOff)))
    const position = () => ({ epoch: fanOut.epoch, seq: fanOut.seq })
    const first = yield* replay.lookup(cfg, log, lastId, context)
    return { handOff, found: yield* replay.catchUp(cfg, log, handOff, first, position) }
  })

// The frames a new subscriber gets first and where its live entries start:
// read now from a log in this process, or completed from a remote read.
const fix = (
  { cfg, context, fanOut, log }: Parts,
  lastId: string | undefined,
  remote: Remote | undefined
): replay.Handed => {
  const sync = log.synchronous
  if (sync !== undefined) {
    const found = lastId === undefined ? undefined : replay.lookupSync(cfg, sync, lastId, context)
    return { replay: found?.replay ?? { _tag: "Live" }, frames: found?.frames ?? [], fromSeq: sync.lastSeq() + 1 }
  }
  if (remote === undefined) return { replay: { _tag: "Live" }, frames: [], fromSeq: fanOut.seq + 1 }
  fanOut.endHandOff(remote.handOff)
  return replay.finish(cfg, remote.handOff, remote.found, lastId!, { epoch: fanOut.epoch, seq: fanOut.seq })
}

/** @internal */
export const subscribe = (
  parts: Parts,
  options: Hub.SubscribeOptions
): Effect.Effect<Hub.Subscription, Hub.SubscribeError, Scope.Scope> =>
  Effect.gen(function*() {
    const { fanOut, log } = parts
    const {
      suspendTimeout,
      dropNotice,
      lastEventId,
      strategy: policy = "disconnect",
      preamble,
      ...connectionOptions
    } = options
    const opening: Array<Uint8Array> = []
    for (const frame of preamble ?? []) {
      const bytes = frameBytes(frame as Frame)
      if (!(bytes instanceof Uint8Array)) return yield* Effect.fail(bytes)
      opening.push(bytes)
    }
    const notice = dropNotice === true ? defaultNotice : dropNotice === false ? undefined : dropNotice
    // An empty Last-Event-ID is no id at all (a client with no last id sends none).
    const lastId = lastEventId === "" ? undefined : lastEventId
    // A remote record is read before the connection starts.
    const remote = log.synchronous === undefined && lastId !== undefined ? yield* readRemote(parts, lastId) : undefined

    let sub: Subscriber | undefined
    let replayed: Hub.Replay = { _tag: "Live" }
    const timeoutMillis = suspendTimeout === undefined
      ? defaultBackpressureTimeoutMillis
      : toMillis(suspendTimeout)
    const conn = yield* connection.makeFed({
      ...connectionOptions,
      strategy: policy === "sliding" || policy === "dropping" ? policy : "suspend",
      dropNotice: notice
    }, {
      // Once, synchronously, when the connection starts accepting offers: the
      // replay is fixed and the subscriber registered in one step, so every
      // entry is either replayed or offered live, never both, never neither.
      // The writer writes these frames before anything offered.
      start: (handle) => {
        const { frames, fromSeq, replay: fixed } = fix(parts, lastId, remote)
        replayed = fixed
        sub = { conn: handle, policy, timeoutMillis, slow: undefined, index: -1, live: false, fromSeq }
        // A backpressured subscriber makes publishes synchronous again: hand
        // the burst still held out first, to everyone already there.
        if (policy === "suspend") log.synchronous?.flush()
        fanOut.add(sub)
        return frames.length === 0 ? opening : [...opening, ...frames]
      },
      // Events published before a close reach it before its close frames.
      beforeClose: () => log.synchronous?.flush(),
      onEnd: () => {
        if (sub !== undefined) fanOut.remove(sub)
      }
    })
    const registered = sub!
    const outcome = Effect.map(conn.outcome, (o): Hub.Outcome => {
      if (o._tag !== "Closed" || o.reason !== slowConsumerReason || registered.slow === undefined) return o
      const { reason: _, ...rest } = o
      return { ...rest, _tag: "SlowConsumer", error: registered.slow }
    })
    return { id: conn.id, connection: conn, replay: replayed, outcome }
  })
