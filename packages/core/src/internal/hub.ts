import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Connection from "../Connection.ts"
import type * as Hub from "../Hub.ts"
import {
  EventNotAllowedError,
  PayloadTooLargeError,
  SlowConsumer,
  TypeId,
  UnserializableDataError,
  WouldBlockError
} from "../Hub.ts"
import { type Event, type Frame, InvalidEventError } from "../SseEvent.ts"
import { utf8, utf8Length } from "./bytes.ts"
import * as connection from "./connection.ts"
import { eventFieldsText, frameBytes, frameText } from "./encoder.ts"
import { History } from "./hub/history.ts"
import * as ids from "./hub/ids.ts"
import { type Member, Members } from "./hub/subscribers.ts"
import * as metrics from "./metrics.ts"
import { atLeast, check } from "./options.ts"

// The close reason a hub gives the connection of a slow consumer; the
// subscription's outcome turns it into the typed `slow-consumer` reason.
const slowConsumerReason = "slow-consumer"

const defaultNotice = (missed: number): Event => ({
  _tag: "Event",
  event: "events_dropped",
  data: JSON.stringify({ missed })
})

interface Subscriber extends Member {
  readonly conn: Connection.Connection
  readonly policy: Hub.Policy
  readonly timeoutMillis: number
  slow: SlowConsumer | undefined
  /** The first sequence number it gets live (everything before was replayed or predates it). */
  readonly fromSeq: number
}

/** A validated event, encoded but for the id line when the hub assigns the id. */
interface Prepared {
  readonly callerId: string | undefined
  readonly text: string
}

interface Committed {
  readonly published: Hub.Published
  readonly bytes: Uint8Array
  readonly blocked: Array<Subscriber> | undefined
}

/** The hub behind the public interface. @internal */
export interface HubInternal extends Hub.Hub {
  readonly publish: (input: Hub.EventInput) => Effect.Effect<Hub.Published, Hub.PublishError>
  readonly publishUnsafe: (
    input: Hub.EventInput
  ) => Result.Result<Hub.Published, Hub.PublishError | Hub.WouldBlockError>
  readonly subscribe: (options: Hub.SubscribeOptions) => Effect.Effect<Hub.Subscription, InvalidEventError, Scope.Scope>
  readonly countRejection: (error: Hub.PublishError | UnserializableDataError) => void
  /** No subscriber, no publisher waiting and no retained history (for `Topics`). */
  readonly isIdle: () => boolean
  /** When the newest retained event expires (Clock millis), if the history has an age limit. */
  readonly expiresAt: () => number | undefined
  /** Called when the last subscriber leaves (for `Topics`). */
  onEmpty: (() => void) | undefined
}

const rejected = {
  tooLarge: Metric.withAttributes(metrics.hubPublishRejected, { reason: "too-large" }),
  notAllowed: Metric.withAttributes(metrics.hubPublishRejected, { reason: "not-allowed" }),
  invalid: Metric.withAttributes(metrics.hubPublishRejected, { reason: "invalid" }),
  unserializable: Metric.withAttributes(metrics.hubPublishRejected, { reason: "unserializable" })
} as const

const slowConsumers = {
  disconnect: Metric.withAttributes(metrics.hubSlowConsumers, { policy: "disconnect" }),
  backpressure: Metric.withAttributes(metrics.hubSlowConsumers, { policy: "backpressure" })
} as const

const replays = {
  resumed: Metric.withAttributes(metrics.hubReplays, { result: "resumed" }),
  expired: Metric.withAttributes(metrics.hubReplays, { result: "expired" }),
  restarted: Metric.withAttributes(metrics.hubReplays, { result: "restarted" }),
  unknown: Metric.withAttributes(metrics.hubReplays, { result: "unknown" })
} as const

const toMillis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))
// Parsed once, not per subscriber.
const defaultBackpressureTimeoutMillis = toMillis("5 seconds")

/** Validated hub options. @internal */
export interface Config {
  readonly maxEvents: number
  readonly maxBytes: number
  readonly maxAgeMillis: number
  readonly maxEventBytes: number
  readonly allowed: ReadonlySet<string> | undefined
  readonly onGap: "replay-retained" | "live-only"
  readonly gapEvent: string
}

/** Reads and checks options; invalid ones are reported like invalid events. @internal */
export const config = (options: Hub.Options): Result.Result<Config, InvalidEventError> => {
  const history = options.history === false ? { maxEvents: 0 } : options.history ?? {}
  const gapEvent = options.gapEvent ?? "replay_gap"
  const gapCheck = frameText({ _tag: "Event", event: gapEvent, data: "" })
  if (typeof gapCheck !== "string") return Result.fail(gapCheck)
  if (options.epoch !== undefined && !ids.isValidEpoch(options.epoch)) {
    return Result.fail(
      new InvalidEventError({
        field: "id",
        reason: `the epoch must be lower-case letters and digits (got ${JSON.stringify(options.epoch)})`
      })
    )
  }
  check("Hub", "history.maxEvents (a number)", atLeast(history.maxEvents, -Infinity, false), history.maxEvents)
  check("Hub", "history.maxBytes (a number)", atLeast(history.maxBytes, -Infinity, false), history.maxBytes)
  check(
    "Hub",
    "history (maxEvents and maxBytes cannot both be unlimited)",
    Number.isFinite(history.maxEvents ?? 0) || Number.isFinite(history.maxBytes ?? 0),
    "Infinity"
  )
  check("Hub", "maxEventBytes (a finite number, at least 1)", atLeast(options.maxEventBytes, 1), options.maxEventBytes)
  const count = (n: number | undefined, fallback: number) => Math.max(0, Math.floor(n ?? fallback))
  return Result.succeed({
    maxEvents: count(history.maxEvents, 1_000),
    maxBytes: count(history.maxBytes, 1_048_576),
    maxAgeMillis: toMillis(history.maxAge ?? "1 hour"),
    maxEventBytes: count(options.maxEventBytes, 65_536),
    allowed: options.allowedEvents === undefined ? undefined : new Set(options.allowedEvents),
    onGap: options.onGap ?? "replay-retained",
    gapEvent
  })
}

/** Builds a hub synchronously (for `Topics`). @internal */
export const makeUnsafe = (
  cfg: Config,
  epoch: string,
  clock: Clock.Clock,
  context: Context.Context<never>
): HubInternal => {
  const history = new History({ maxEvents: cfg.maxEvents, maxBytes: cfg.maxBytes, maxAgeMillis: cfg.maxAgeMillis })
  const members = new Members<Subscriber>()
  let published = 0
  let lastEventId: string | undefined
  // Subscribers whose policy can make a publisher wait; none means publishes
  // are plain synchronous calls.
  let backpressured = 0

  // The gate: held by a publisher that waits for backpressured subscribers.
  // Later publishers queue behind it in order, so everyone sees one order.
  let gateHeld = false
  const gateWaiters: Array<() => void> = []
  const releaseGate = () => {
    const next = gateWaiters.shift()
    if (next === undefined) gateHeld = false
    else next() // ownership passes on; gateHeld stays true
  }
  const waitForGate = (ticket: { handed: boolean }) =>
    Effect.callback<void>((resume) => {
      const waiter = () => {
        ticket.handed = true
        // Resume through the scheduler: a chain of waiting publishers must not
        // run nested in the releasing publisher's stack.
        resume(Effect.yieldNow)
      }
      gateWaiters.push(waiter)
      return Effect.sync(() => {
        const i = gateWaiters.indexOf(waiter)
        if (i >= 0) gateWaiters.splice(i, 1)
      })
    })

  const now = () => clock.currentTimeMillisUnsafe()
  // Read by the metric registry at scrape time (an addition per delivery batch).
  const deliveries = metrics.hubDeliveriesCell(context)
  const publishedCell = metrics.hubPublishedCell(context)
  // A burst is one instant: the clock is read once per synchronous run of
  // publishes (cleared when the burst is handed out).
  let burstNow: number | undefined

  const addSubscriber = (sub: Subscriber) => {
    members.add(sub)
    if (sub.policy === "backpressure") backpressured++
    metrics.hubSubscribers.modifyUnsafe(1, context)
  }
  const removeSubscriber = (sub: Subscriber) => {
    if (!members.remove(sub)) return
    if (sub.policy === "backpressure") backpressured--
    metrics.hubSubscribers.modifyUnsafe(-1, context)
    if (members.size === 0) hub.onEmpty?.()
  }

  const disconnect = (sub: Subscriber, policy: "disconnect" | "backpressure", waitedMillis?: number) => {
    sub.slow = new SlowConsumer({
      subscriber: sub.conn.id,
      policy,
      capacity: sub.conn.capacity,
      ...(waitedMillis === undefined ? {} : { waitedMillis })
    })
    // Ends the connection now (its onEnd removes the subscriber); `false`
    // when it had already ended for another reason.
    if (sub.conn.killUnsafe(slowConsumerReason)) slowConsumers[policy].updateUnsafe(1, context)
    else sub.slow = undefined
    removeSubscriber(sub)
  }

  // The event, checked and as text, or why it is refused (errors have a
  // `_tag`, a `Prepared` has none). Runs once per event: no wrappers.
  const prepare = (input: Hub.EventInput): Prepared | Hub.PublishError => {
    // Read every field once: what is published cannot change afterwards.
    const { data, event, id, retry } = input
    if (cfg.allowed !== undefined) {
      const type = event === undefined || event === "" ? "message" : event
      if (!cfg.allowed.has(type)) return new EventNotAllowedError({ event: type })
    }
    // UTF-8 never takes fewer bytes than UTF-16 code units: reject huge data without encoding it.
    if (typeof data === "string" && data.length > cfg.maxEventBytes) {
      return new PayloadTooLargeError({ size: data.length, max: cfg.maxEventBytes })
    }
    const text = eventFieldsText(data, event, id, retry)
    if (typeof text !== "string") return text
    return { callerId: id, text }
  }

  const countRejection = (error: Hub.PublishError | UnserializableDataError) => {
    const metric = error._tag === "PayloadTooLargeError"
      ? rejected.tooLarge
      : error._tag === "EventNotAllowedError"
      ? rejected.notAllowed
      : error._tag === "UnserializableDataError"
      ? rejected.unserializable
      : rejected.invalid
    metric.updateUnsafe(1, context)
  }

  // Events committed since the last fan-out. When no publisher can be made to
  // wait, a burst of publishes is handed to each subscriber once, at the end of
  // the synchronous run that made it (a microtask): one pass over the
  // subscribers per burst instead of one per event. Subscribers joining in
  // between get only the events after their `fromSeq`.
  let tick: Array<Uint8Array> = []
  let tickFirstSeq = 0
  let fanOutScheduled = false
  const fanOut = () => {
    fanOutScheduled = false
    burstNow = undefined
    encodePending()
    if (tick.length === 0) return
    const events = tick
    const first = tickFirstSeq
    tick = []
    const items = members.begin()
    try {
      for (let i = 0; i < items.length; i++) {
        const sub = items[i]!
        if (!sub.live) continue
        const from = sub.fromSeq > first ? sub.fromSeq - first : 0
        if (from >= events.length) continue
        let at = from
        while (at < events.length) {
          // `events` is never changed again (`tick` starts anew): frozen.
          const stop = sub.conn.offerManyUnsafe(events, at, true)
          deliveries.count += stop - at
          if (stop === events.length) break
          // Refused: closing or ended, or full under a policy that refuses.
          if (!sub.conn.accepting()) {
            removeSubscriber(sub)
            break
          }
          if (sub.policy === "disconnect") {
            disconnect(sub, "disconnect")
            break
          }
          // drop-newest: dropped and counted by the connection itself.
          at = stop + 1
        }
      }
    } finally {
      members.end()
    }
  }

  // The sequence number of the last event committed (the history catches up
  // in `encodePending`).
  let lastSeq = 0

  // Gives the event its sequence number and id (then `lastSeq` and
  // `lastEventId`) and returns its final text, after checking its encoded
  // size (exactly only when it could be too large: UTF-8 takes at most 3
  // bytes per UTF-16 code unit). No allocation but the text: this runs once
  // per event.
  const assign = (p: Prepared): string | PayloadTooLargeError => {
    const seq = lastSeq + 1
    const id = p.callerId ?? ids.format(epoch, seq)
    const text = p.callerId === undefined ? `id: ${id}\n${p.text}` : p.text
    if (text.length * 3 > cfg.maxEventBytes) {
      const size = utf8Length(text)
      if (size > cfg.maxEventBytes) return new PayloadTooLargeError({ size, max: cfg.maxEventBytes })
    }
    if (burstNow === undefined) burstNow = now()
    lastSeq = seq
    published++
    lastEventId = id
    publishedCell.count++
    return text
  }

  // Events committed in this burst and not yet encoded (parallel arrays: no
  // object per event). They are encoded together, in runs of up to
  // `runChars` characters: one encoder call and one allocation per run
  // instead of per event. A retained event pins at most its run, as a small
  // Node Buffer pins its 8 KiB pool slab.
  let pendingFirstSeq = 0
  let pendingTexts: Array<string> = []
  let pendingIds: Array<string> = []
  let pendingAts: Array<number> = []
  let pendingCallerIds: Array<boolean> = []
  const runChars = 8192
  const encodePending = () => {
    const n = pendingTexts.length
    if (n === 0) return
    const texts = pendingTexts
    const eventIds = pendingIds
    const ats = pendingAts
    const callerIds = pendingCallerIds
    const first = pendingFirstSeq
    pendingTexts = []
    pendingIds = []
    pendingAts = []
    pendingCallerIds = []
    const emit = (k: number, bytes: Uint8Array) => {
      tick.push(bytes)
      history.append(first + k, eventIds[k]!, bytes, ats[k]!, callerIds[k]!)
    }
    let i = 0
    while (i < n) {
      let j = i + 1
      let chars = texts[i]!.length
      while (j < n && chars + texts[j]!.length <= runChars) chars += texts[j++]!.length
      if (j - i === 1) {
        emit(i, utf8(texts[i]!))
      } else {
        let joined = ""
        for (let k = i; k < j; k++) joined += texts[k]!
        const run = utf8(joined)
        // Only ASCII text takes exactly one byte per UTF-16 code unit; then
        // each event's bytes are a view of the run. Otherwise, one by one.
        const ascii = run.byteLength === chars
        let offset = 0
        for (let k = i; k < j; k++) {
          const end = offset + texts[k]!.length
          emit(k, ascii ? run.subarray(offset, end) : utf8(texts[k]!))
          offset = end
        }
      }
      i = j
    }
  }

  // The common case: nobody can make a publisher wait.
  const commitDeferred = (p: Prepared): Result.Result<Hub.Published, PayloadTooLargeError> => {
    if (!fanOutScheduled) burstNow = undefined // the first event of a burst reads the clock
    const text = assign(p)
    if (typeof text !== "string") return Result.fail(text)
    if (pendingTexts.length === 0) {
      pendingFirstSeq = lastSeq
      if (tick.length === 0) tickFirstSeq = lastSeq
    }
    pendingTexts.push(text)
    pendingIds.push(lastEventId!)
    pendingAts.push(burstNow!)
    pendingCallerIds.push(p.callerId !== undefined)
    if (!fanOutScheduled) {
      fanOutScheduled = true
      queueMicrotask(fanOut)
    }
    return Result.succeed({ seq: lastSeq, id: lastEventId!, delivered: members.size })
  }

  // With backpressured subscribers: offered to every mailbox now, so that a
  // publisher can wait for the ones that are full (after any deferred burst).
  const commit = (p: Prepared): Result.Result<Committed, PayloadTooLargeError> => {
    fanOut()
    const text = assign(p)
    if (typeof text !== "string") return Result.fail(text)
    const seq = lastSeq
    const id = lastEventId!
    const bytes = utf8(text)
    history.append(seq, id, bytes, burstNow!, p.callerId !== undefined)

    let delivered = 0
    let blocked: Array<Subscriber> | undefined
    const items = members.begin()
    try {
      for (let i = 0; i < items.length; i++) {
        const sub = items[i]!
        if (!sub.live) continue
        if (sub.conn.offerUnsafe(bytes)) {
          delivered++
          continue
        }
        // Refused: closing or ended, or full under a policy that refuses.
        if (!sub.conn.accepting()) removeSubscriber(sub)
        else if (sub.policy === "disconnect") disconnect(sub, "disconnect")
        else if (sub.policy === "backpressure") (blocked ??= []).push(sub)
        // drop-newest: dropped and counted by the connection itself.
      }
    } finally {
      members.end()
    }
    deliveries.count += delivered
    return Result.succeed({ published: { seq, id, delivered }, bytes, blocked })
  }

  // A backpressured subscriber gets the event when its writer makes room, or
  // is disconnected at its timeout (or if the publisher is interrupted: it
  // would otherwise have a gap).
  const awaitRoom = (sub: Subscriber, bytes: Uint8Array): Effect.Effect<number> =>
    Effect.suspend(() => {
      const started = now()
      return Effect.timeoutOption(sub.conn.offer(bytes), sub.timeoutMillis).pipe(
        Effect.map((accepted) => {
          if (accepted._tag === "None") {
            disconnect(sub, "backpressure", now() - started)
            return 0
          }
          if (accepted.value) {
            deliveries.count++
            return 1
          }
          removeSubscriber(sub)
          return 0
        }),
        Effect.onInterrupt(() => Effect.sync(() => disconnect(sub, "backpressure", now() - started)))
      )
    })

  const awaitBlocked = (blocked: Array<Subscriber>, bytes: Uint8Array) =>
    Effect.map(
      Effect.forEach(blocked, (sub) => awaitRoom(sub, bytes), { concurrency: "unbounded" }),
      (counts) => counts.reduce((a, b) => a + b, 0)
    )

  // The slow path, taken when a publisher may have to wait: for the gate, or
  // for backpressured subscribers. The gate is always released, also on
  // interruption.
  const publishGated = (p: Prepared): Effect.Effect<Hub.Published, PayloadTooLargeError> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        let owned = false
        if (gateHeld) {
          const ticket = { handed: false }
          const waited = yield* Effect.exit(restore(waitForGate(ticket)))
          if (Exit.isFailure(waited)) {
            if (ticket.handed) releaseGate()
            return yield* Effect.failCause(waited.cause)
          }
          owned = true
        }
        const committed = commit(p)
        if (Result.isFailure(committed) || committed.success.blocked === undefined) {
          if (owned) releaseGate()
          if (Result.isFailure(committed)) {
            countRejection(committed.failure)
            return yield* Effect.fail(committed.failure)
          }
          return committed.success.published
        }
        const { blocked, bytes, published: result } = committed.success
        if (!owned) gateHeld = true
        const late = yield* Effect.exit(restore(awaitBlocked(blocked, bytes)))
        releaseGate()
        if (Exit.isFailure(late)) return yield* Effect.failCause(late.cause)
        return { ...result, delivered: result.delivered + late.value }
      })
    )

  const publishPrepared = (p: Prepared): Effect.Effect<Hub.Published, PayloadTooLargeError> => {
    if (gateHeld || backpressured > 0) return publishGated(p)
    // Nobody can make this publish wait: one synchronous step.
    const committed = commitDeferred(p)
    if (Result.isFailure(committed)) {
      countRejection(committed.failure)
      return Effect.fail(committed.failure)
    }
    return Effect.succeed(committed.success)
  }

  const publish = (input: Hub.EventInput): Effect.Effect<Hub.Published, Hub.PublishError> =>
    Effect.suspend(() => {
      const prepared = prepare(input)
      if ("_tag" in prepared) {
        countRejection(prepared)
        return Effect.fail(prepared)
      }
      return publishPrepared(prepared)
    })

  // The synchronous form: the same commit, refused up front (nothing touched)
  // when a backpressured subscriber could make the publish wait.
  const publishUnsafe = (
    input: Hub.EventInput
  ): Result.Result<Hub.Published, Hub.PublishError | Hub.WouldBlockError> => {
    if (gateHeld || backpressured > 0) return Result.fail(new WouldBlockError({ subscribers: backpressured }))
    const prepared = prepare(input)
    if ("_tag" in prepared) {
      countRejection(prepared)
      return Result.fail(prepared)
    }
    const committed = commitDeferred(prepared)
    if (Result.isFailure(committed)) {
      countRejection(committed.failure)
      return Result.fail(committed.failure)
    }
    return committed
  }

  interface Found {
    readonly replay: Hub.Replay
    readonly frames: ReadonlyArray<Uint8Array>
  }

  const gapFrame = (reason: Hub.GapReason, lastId: string, resumeSeq: number): Uint8Array =>
    utf8(
      `id: ${ids.format(epoch, resumeSeq)}\nevent: ${cfg.gapEvent}\ndata: ${
        JSON.stringify({ reason, lastEventId: lastId })
      }\n\n`
    )

  // Finds what a client with `lastEventId` missed. Synchronous, and run in the
  // same step as the registration of the subscriber (see `subscribe`).
  const lookup = (lastId: string | undefined): Found => {
    encodePending()
    history.evict(now())
    if (lastId === undefined || lastId === "") return { replay: { _tag: "Live" }, frames: [] }
    let seq = history.seqOfCallerId(lastId)
    let reason: Hub.GapReason = "unknown"
    if (seq === undefined) {
      const parsed = ids.parse(lastId)
      if (parsed !== undefined && parsed.epoch !== epoch) reason = "restarted"
      else if (parsed !== undefined && parsed.seq <= history.lastSeq) {
        // Contiguous history: `firstSeq - 1` means "has everything before what is retained".
        if (parsed.seq >= history.firstSeq - 1) seq = parsed.seq
        else reason = "expired"
      }
    }
    if (seq !== undefined) {
      const entries = history.after(seq)
      replays.resumed.updateUnsafe(1, context)
      metrics.hubEventsReplayed.updateUnsafe(entries.length, context)
      return {
        replay: { _tag: "Resumed", lastEventId: lastId, replayed: entries.length },
        frames: entries.map((e) => e.bytes)
      }
    }
    const entries = cfg.onGap === "live-only" ? [] : history.after(history.firstSeq - 1)
    // The gap signal's id is where the client now stands, so a reconnect
    // right after it resumes exactly.
    const resumeSeq = cfg.onGap === "live-only" ? history.lastSeq : history.firstSeq - 1
    replays[reason].updateUnsafe(1, context)
    metrics.hubEventsReplayed.updateUnsafe(entries.length, context)
    return {
      replay: { _tag: "Gap", lastEventId: lastId, reason, replayed: entries.length },
      frames: [gapFrame(reason, lastId, resumeSeq), ...entries.map((e) => e.bytes)]
    }
  }

  const subscribe = (options: Hub.SubscribeOptions): Effect.Effect<Hub.Subscription, InvalidEventError, Scope.Scope> =>
    Effect.gen(function*() {
      const {
        backpressureTimeout,
        dropNotice,
        lastEventId: lastId,
        onEnd,
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
      let sub: Subscriber | undefined
      let replay: Hub.Replay = { _tag: "Live" }
      const conn = yield* connection.make<never, never>({
        ...connectionOptions,
        overflow: policy === "drop-oldest" || policy === "drop-newest" ? policy : "suspend",
        dropNotice: notice,
        // Called once, synchronously, when the connection starts accepting
        // offers: the replayed suffix is fixed and the subscriber registered
        // in one step, so every event is either in the replay or offered live,
        // never both, never neither. The writer writes these frames before
        // anything in the mailbox.
        preamble: (handle) => {
          const found = lookup(lastId)
          replay = found.replay
          sub = {
            conn: handle,
            policy,
            timeoutMillis: backpressureTimeout === undefined
              ? defaultBackpressureTimeoutMillis
              : toMillis(backpressureTimeout),
            slow: undefined,
            index: -1,
            live: false,
            fromSeq: history.lastSeq + 1
          }
          // A backpressured subscriber makes publishes synchronous again:
          // hand the deferred burst out first, to everyone already there.
          if (policy === "backpressure") fanOut()
          addSubscriber(sub)
          return found.frames.length === 0 ? opening : [...opening, ...found.frames]
        },
        // Events published before a close reach it before its close frames.
        beforeClose: fanOut,
        onEnd: (outcome) => {
          if (sub !== undefined) removeSubscriber(sub)
          onEnd?.(outcome)
        }
      })
      const registered = sub!
      const outcome = Effect.map(conn.outcome, (o): Hub.Outcome => {
        if (o.reason !== "closed" || o.closeReason !== slowConsumerReason || registered.slow === undefined) return o
        const { closeReason: _, reason: __, ...rest } = o
        return { ...rest, reason: "slow-consumer", error: registered.slow }
      })
      return { id: conn.id, connection: conn, replay, outcome }
    })

  const hub: HubInternal = {
    [TypeId]: TypeId,
    epoch,
    subscriberCount: () => members.size,
    stats: () => {
      encodePending()
      history.evict(now())
      return {
        subscribers: members.size,
        published,
        history: { events: history.size, bytes: history.bytes },
        lastEventId
      }
    },
    isIdle: () => {
      if (members.size > 0 || gateHeld) return false
      encodePending()
      history.evict(now())
      return history.size === 0
    },
    expiresAt: () => {
      encodePending()
      return history.expiresAt()
    },
    onEmpty: undefined,
    publish,
    publishUnsafe,
    subscribe,
    countRejection
  }
  return hub
}

const impl = (hub: Hub.Hub): HubInternal => hub as HubInternal

/** @internal */
export const make = (options: Hub.Options): Effect.Effect<Hub.Hub, InvalidEventError> =>
  Effect.gen(function*() {
    const cfg = config(options)
    if (Result.isFailure(cfg)) return yield* Effect.fail(cfg.failure)
    const random = yield* Random.Random
    const epoch = options.epoch ?? ids.randomEpoch(() => random.nextDoubleUnsafe())
    return makeUnsafe(cfg.success, epoch, yield* Clock.Clock, yield* Effect.context<never>())
  })

/** @internal */
export const publish = (self: Hub.Hub, event: Hub.EventInput) => impl(self).publish(event)

/** @internal */
export const publishUnsafe = (self: Hub.Hub, event: Hub.EventInput) => impl(self).publishUnsafe(event)

const stringify = (value: unknown): Result.Result<string, UnserializableDataError> => {
  try {
    const json = JSON.stringify(value)
    return typeof json === "string"
      ? Result.succeed(json)
      : Result.fail(new UnserializableDataError({ reason: `${typeof value} has no JSON representation` }))
  } catch (cause) {
    return Result.fail(
      new UnserializableDataError({ reason: cause instanceof Error ? cause.message : String(cause), cause })
    )
  }
}

/** @internal */
export const publishJson = (
  self: Hub.Hub,
  value: unknown,
  fields?: Hub.JsonFields
): Effect.Effect<Hub.Published, Hub.PublishError | UnserializableDataError> =>
  Effect.suspend((): Effect.Effect<Hub.Published, Hub.PublishError | UnserializableDataError> => {
    const json = stringify(value)
    if (Result.isFailure(json)) {
      impl(self).countRejection(json.failure)
      return Effect.fail(json.failure)
    }
    return impl(self).publish({ ...fields, data: json.success })
  })

/** @internal */
export const publishSchema = <S extends Schema.Top>(
  self: Hub.Hub,
  schema: S,
  value: S["Type"],
  fields?: Hub.JsonFields
): Effect.Effect<Hub.Published, Hub.PublishError | UnserializableDataError, S["EncodingServices"]> =>
  Schema.encodeEffect(Schema.fromJsonString(schema))(value).pipe(
    Effect.mapError((issue) => {
      const error = new UnserializableDataError({ reason: issue.message, cause: issue })
      impl(self).countRejection(error)
      return error
    }),
    Effect.flatMap((json) => impl(self).publish({ ...fields, data: json }))
  )

/** @internal */
export const subscribe = (self: Hub.Hub, options: Hub.SubscribeOptions) => impl(self).subscribe(options)
