/**
 * Subscribing: a connection the hub feeds, registered with the fan-out in
 * the same synchronous step that fixes its replay (see `replay`).
 *
 * The subscriber's stream is its preamble, then the gap signal (if any),
 * then the replayed entries, then live ones. Its end (for any reason)
 * removes it from the fan-out at once; a slow consumer's outcome carries the
 * typed `SlowConsumerError`.
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
import type { Fed, Feeder } from "../connection.ts"
import { frameBytes } from "../encoder.ts"
import type { Config } from "./config.ts"
import type { SlowConsumerError } from "./errors.ts"
import { type FanOut, slowConsumerReason, type Subscriber } from "./fanOut.ts"
import * as replay from "./replay.ts"
import type { Tail } from "./tail.ts"

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
  readonly tail: Tail
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

/**
 * A subscriber: what the fan-out holds, and the feeder of its connection
 * (one object, its hooks on the prototype).
 */
class Subscribing implements Subscriber, Feeder {
  conn!: Fed
  slow: SlowConsumerError | undefined = undefined
  index = -1
  live = false
  fromSeq = 0
  replayed: Hub.Replay = live
  readonly policy: Hub.Strategy
  readonly timeoutMillis: number
  readonly context: Context.Context<never>
  private readonly parts: Parts
  // Needed until the connection starts, then let go.
  private opening: ReadonlyArray<Uint8Array> | undefined
  private lastId: string | undefined
  private remote: Remote | undefined

  constructor(
    parts: Parts,
    policy: Hub.Strategy,
    timeoutMillis: number,
    opening: ReadonlyArray<Uint8Array>,
    lastId: string | undefined,
    remote: Remote | undefined
  ) {
    this.parts = parts
    this.context = parts.context
    this.policy = policy
    this.timeoutMillis = timeoutMillis
    this.opening = opening
    this.lastId = lastId
    this.remote = remote
  }

  // Once, synchronously, when the connection starts accepting offers: the
  // replay is fixed and the subscriber registered in one step, so every
  // entry is either replayed or offered live, never both, never neither.
  // The writer writes these frames before anything offered.
  start(handle: Fed): ReadonlyArray<Uint8Array> {
    const { frames, fromSeq, replay: fixed } = fix(this.parts, this.lastId, this.remote)
    const opening = this.opening!
    this.opening = undefined
    this.lastId = undefined
    this.remote = undefined
    this.conn = handle
    this.replayed = fixed // read once `makeFed` returns, then let go
    this.fromSeq = fromSeq
    // A backpressured subscriber makes publishes synchronous again: hand
    // the burst still held out first, to everyone already there.
    if (this.policy === "suspend") this.parts.tail.flush()
    this.parts.fanOut.add(this)
    return frames.length === 0 ? opening : [...opening, ...frames]
  }

  // Events published before a close reach it before its close frames.
  beforeClose(): void {
    this.parts.tail.flush()
  }

  onEnd(): void {
    this.parts.fanOut.remove(this)
  }
}

const live: Hub.Replay = { _tag: "Live" }

/** @internal */
export const subscribe = (
  parts: Parts,
  options: Hub.SubscribeOptions
): Effect.Effect<Hub.Subscription, Hub.SubscribeError, Scope.Scope> =>
  Effect.suspend((): Effect.Effect<Hub.Subscription, Hub.SubscribeError, Scope.Scope> => {
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
      if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
      opening.push(bytes)
    }
    const notice = dropNotice === true ? defaultNotice : dropNotice === false ? undefined : dropNotice
    // An empty Last-Event-ID is no id at all (a client with no last id sends none).
    const lastId = lastEventId === "" ? undefined : lastEventId
    const timeoutMillis = suspendTimeout === undefined
      ? defaultBackpressureTimeoutMillis
      : toMillis(suspendTimeout)
    const connect = (remote: Remote | undefined) => {
      const sub = new Subscribing(parts, policy, timeoutMillis, opening, lastId, remote)
      return Effect.map(
        connection.makeFed({
          ...connectionOptions,
          strategy: policy === "sliding" || policy === "dropping" ? policy : "suspend",
          dropNotice: notice
        }, sub),
        (conn): Hub.Subscription => subscription(sub, conn)
      )
    }
    // A remote record is read before the connection starts.
    return parts.log.synchronous === undefined && lastId !== undefined
      ? Effect.flatMap(readRemote(parts, lastId), connect)
      : connect(undefined)
  })

const subscription = (sub: Subscribing, conn: Fed): Hub.Subscription => {
  // Suspended: nothing waits for the end until someone asks.
  const outcome = Effect.suspend(() =>
    Effect.map(conn.outcome, (o): Hub.Outcome => {
      if (o._tag !== "Closed" || o.reason !== slowConsumerReason || sub.slow === undefined) return o
      const { reason: _, ...rest } = o
      return { ...rest, _tag: "SlowConsumer", error: sub.slow }
    })
  )
  const fixed = sub.replayed
  sub.replayed = live
  return { id: conn.id, connection: conn, replay: fixed, outcome }
}
