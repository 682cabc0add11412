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

/** @internal */
export const subscribe = (
  { cfg, context, fanOut, log }: Parts,
  options: Hub.SubscribeOptions
): Effect.Effect<Hub.Subscription, Hub.SubscribeError, Scope.Scope> =>
  Effect.gen(function*() {
    const {
      backpressureTimeout,
      dropNotice,
      lastEventId,
      policy = "disconnect",
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
    const sync = log.synchronous

    // A remote record is read before the connection starts; live entries of
    // that time are kept aside by the hand-off.
    let remote: { readonly handOff: replay.HandOff; readonly found: replay.Found } | undefined
    if (sync === undefined && lastId !== undefined) {
      const handOff = fanOut.beginHandOff()
      yield* Effect.addFinalizer(() => Effect.sync(() => fanOut.endHandOff(handOff)))
      const position = () => ({ epoch: fanOut.epoch, seq: fanOut.seq })
      const found = yield* Effect.flatMap(
        replay.lookup(cfg, log, lastId, context),
        (first) => replay.catchUp(cfg, log, handOff, first, position)
      )
      remote = { handOff, found }
    }

    let sub: Subscriber | undefined
    let replayed: Hub.Replay = { _tag: "Live" }
    const timeoutMillis = backpressureTimeout === undefined
      ? defaultBackpressureTimeoutMillis
      : toMillis(backpressureTimeout)
    const conn = yield* connection.makeFed({
      ...connectionOptions,
      overflow: policy === "drop-oldest" || policy === "drop-newest" ? policy : "suspend",
      dropNotice: notice
    }, {
      // Called once, synchronously, when the connection starts accepting
      // offers: the replay is fixed and the subscriber registered in one step,
      // so every entry is either replayed or offered live, never both, never
      // neither. The writer writes these frames before anything offered.
      start: (handle) => {
        let frames: ReadonlyArray<Uint8Array> = []
        let fromSeq: number
        if (sync !== undefined) {
          if (lastId !== undefined) {
            const found = replay.lookupSync(cfg, sync, lastId, context)
            replayed = found.replay
            frames = found.frames
          }
          fromSeq = sync.lastSeq() + 1
        } else if (remote !== undefined) {
          fanOut.endHandOff(remote.handOff)
          const handed = replay.finish(cfg, remote.handOff, remote.found, lastId!, {
            epoch: fanOut.epoch,
            seq: fanOut.seq
          })
          replayed = handed.replay
          frames = handed.frames
          fromSeq = handed.fromSeq
        } else {
          fromSeq = fanOut.seq + 1
        }
        sub = { conn: handle, policy, timeoutMillis, slow: undefined, index: -1, live: false, fromSeq }
        // A backpressured subscriber makes publishes synchronous again: hand
        // the burst still held out first, to everyone already there.
        if (policy === "backpressure") sync?.flush()
        fanOut.add(sub)
        return frames.length === 0 ? opening : [...opening, ...frames]
      },
      // Events published before a close reach it before its close frames.
      beforeClose: () => sync?.flush(),
      onEnd: () => {
        if (sub !== undefined) fanOut.remove(sub)
      }
    })
    const registered = sub!
    const outcome = Effect.map(conn.outcome, (o): Hub.Outcome => {
      if (o.reason !== "closed" || o.closeReason !== slowConsumerReason || registered.slow === undefined) return o
      const { closeReason: _, reason: __, ...rest } = o
      return { ...rest, reason: "slow-consumer", error: registered.slow }
    })
    return { id: conn.id, connection: conn, replay: replayed, outcome }
  })
