/**
 * The in-memory feed: one record for every topic in this process, routing
 * by topic, and replay fixed in the same synchronous step as a subscriber's
 * registration (see `Feed` for what it guarantees). The shared feed
 * (`shared.ts`) keeps the same structures as a mirror of a shared log.
 *
 * @internal
 */
import { Connection, Hub, OptionCheck, SseEncoder, SseEvent } from "@sluice/core"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import type * as Feed from "../../Feed.ts"
import * as metrics from "../metrics.ts"
import { type Entry, Log } from "./log.ts"

/**
 * The subscribers of one set of topics: they receive the same events, so
 * each hand-out gives them one burst, shared by their mailboxes.
 */
interface Group {
  readonly key: string
  readonly topics: ReadonlySet<string>
  readonly subs: Set<Subscriber>
  /** The last sequence number routed to it (dedupes an event on several of its topics). */
  lastSeq: number
  /** Events routed since the last hand-out, and their sequence numbers. */
  frames: Array<Uint8Array> | undefined
  seqs: Array<number>
}

interface Subscriber {
  /** Set once the connection exists (it is registered a step before, with its replay fixed). */
  conn: Connection.Connection | undefined
  readonly group: Group
  readonly policy: Feed.Strategy
  live: boolean
  /** It gets live only the events after this one (the rest is in its replay). */
  fromSeq: number
  /** Frames handed out before its connection existed, offered first. */
  held: Array<Uint8Array> | undefined
}

const epochPattern = /^[0-9a-z]+$/

const randomEpoch = (): string => {
  const bytes = randomBytes(10)
  let out = ""
  for (const b of bytes) out += (b % 36).toString(36)
  return out
}

/** @internal */
export const parseId = (id: string): { readonly epoch: string; readonly seq: number } | undefined => {
  const dash = id.lastIndexOf("-")
  if (dash <= 0) return undefined
  const epoch = id.slice(0, dash)
  const digits = id.slice(dash + 1)
  if (!epochPattern.test(epoch) || !/^\d+$/.test(digits)) return undefined
  const seq = Number(digits)
  return Number.isSafeInteger(seq) ? { epoch, seq } : undefined
}

const encoder = new TextEncoder()

const replayResults = {
  resumed: Metric.withAttributes(metrics.replays, { result: "resumed" }),
  expired: Metric.withAttributes(metrics.replays, { result: "expired" }),
  restarted: Metric.withAttributes(metrics.replays, { result: "restarted" }),
  unknown: Metric.withAttributes(metrics.replays, { result: "unknown" })
} as const

const check = (name: string, value: number | undefined, min: number) =>
  OptionCheck.check("Feed", `${name} (a number, at least ${min})`, OptionCheck.atLeast(value, min, false), value)

// The coalescing window's milliseconds (0: none), `NaN` for what is not a duration.
const coalesceMillis = (input: Duration.Input | false | undefined): number => {
  if (input === false) return 0
  try {
    return Duration.toMillis(Duration.fromInputUnsafe(input ?? "2 millis"))
  } catch {
    return Number.NaN
  }
}

/** @internal */
export const make = (options: Feed.Options = {}): Effect.Effect<Feed.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    check("history.maxEvents", options.history?.maxEvents, 0)
    check("history.maxBytes", options.history?.maxBytes, 0)
    check("history.maxAgeMillis", options.history?.maxAgeMillis, 0)
    check("maxEventBytes", options.maxEventBytes, 1)
    const coalesce = coalesceMillis(options.coalesce)
    OptionCheck.check(
      "Feed",
      "coalesce (a finite duration, or false)",
      Number.isFinite(coalesce) && coalesce >= 0,
      options.coalesce
    )
    OptionCheck.check(
      "Feed",
      "epoch (lower-case letters and digits)",
      options.epoch === undefined || epochPattern.test(options.epoch),
      JSON.stringify(options.epoch)
    )
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    return new MemoryFeed(options, clock, context)
  })

/**
 * The feed of this process: its record, its subscribers by topic, routing
 * and replay. An in-memory feed numbers what it publishes itself; a shared
 * one (`shared.ts`) fills the record from a `Log` that several processes
 * append to, with the same numbers on every process.
 *
 * @internal
 */
export class MemoryFeed implements Feed.Service {
  /** The record's life: part of every id. */
  epoch: string
  log: Log
  readonly maxEventBytes: number
  /** Groups by topic, and by their set of topics. */
  readonly byTopic = new Map<string, Set<Group>>()
  readonly groups = new Map<string, Group>()
  subscriberCount = 0
  published = 0
  lastEventId: string | undefined = undefined
  // Groups with a burst to hand out, and subscribers whose connection did not exist at the last hand-out.
  dirty: Array<Group> = []
  readonly waiting = new Set<Subscriber>()
  // The next hand-out is scheduled (at once, or at the window's end).
  private scheduled: "immediate" | ReturnType<typeof setTimeout> | undefined = undefined
  // The coalescing window (nanoseconds; undefined: none), and when the last hand-out ended.
  private readonly windowNanos: number | undefined
  private deliveredAt = Number.NEGATIVE_INFINITY
  readonly clock: Clock.Clock
  readonly context: Context.Context<never>

  constructor(options: Feed.Options, clock: Clock.Clock, context: Context.Context<never>) {
    this.epoch = options.epoch ?? randomEpoch()
    this.log = new Log({
      maxEvents: Math.floor(options.history?.maxEvents ?? 10_000),
      maxBytes: Math.floor(options.history?.maxBytes ?? 16 * 1024 * 1024),
      maxAgeMillis: options.history?.maxAgeMillis ?? 3_600_000
    })
    this.maxEventBytes = Math.floor(options.maxEventBytes ?? 65_536)
    const window = coalesceMillis(options.coalesce)
    this.windowNanos = window > 0 ? window * 1e6 : undefined
    this.clock = clock
    this.context = context
  }

  now() {
    return this.clock.currentTimeMillisUnsafe()
  }

  stats = (): Feed.Stats => {
    this.log.evict(this.now())
    return {
      subscribers: this.subscriberCount,
      topics: this.byTopic.size,
      published: this.published,
      history: { events: this.log.size, bytes: this.log.bytes },
      lastEventId: this.lastEventId
    }
  }

  // Validates and encodes one event with the id it will get; the bytes, or
  // why it is refused.
  encode(input: Feed.PublishInput, id: string): Uint8Array | Feed.PublishError {
    if (input.data.length > this.maxEventBytes) {
      return new Hub.PayloadTooLargeError({ size: input.data.length, max: this.maxEventBytes })
    }
    // The core encoder's bytes (on Node from a shared pool: no buffer of its own per event).
    const encoded = SseEncoder.encodeResult(SseEvent.make({ id, event: input.event, data: input.data }))
    if (Result.isFailure(encoded)) return encoded.failure
    const bytes = encoded.success
    if (bytes.byteLength > this.maxEventBytes) {
      return new Hub.PayloadTooLargeError({ size: bytes.byteLength, max: this.maxEventBytes })
    }
    return bytes
  }

  publish = (
    events: ReadonlyArray<Feed.PublishInput>
  ): Effect.Effect<ReadonlyArray<Feed.Published>, Feed.PublishError> =>
    Effect.suspend(() => {
      // Everything is checked before anything is recorded: all or nothing.
      // Sequence numbers are taken only once all are valid (this runs in
      // one synchronous step, so nothing else takes them meanwhile).
      const first = this.log.lastSeq + 1
      const at = this.now()
      const entries: Array<Entry> = []
      for (let i = 0; i < events.length; i++) {
        const input = events[i]!
        if (input.id === "") {
          return Effect.fail(new SseEvent.InvalidEventError({ field: "id", reason: "an empty id cannot be resumed" }))
        }
        const seq = first + i
        const id = input.id ?? `${this.epoch}-${seq}`
        const bytes = this.encode(input, id)
        if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
        entries.push({ seq, id, topics: input.topics, bytes, at, callerId: input.id !== undefined })
      }
      const out: Array<Feed.Published> = []
      for (const entry of entries) {
        this.log.append(entry)
        this.route(entry)
        out.push({ id: entry.id, seq: entry.seq })
      }
      this.published += events.length
      if (events.length > 0) this.lastEventId = out[out.length - 1]!.id
      metrics.published.updateUnsafe(events.length, this.context)
      return Effect.succeed(out)
    })

  /** Records an entry numbered elsewhere (the next in order) and routes it. */
  record(entry: Entry) {
    this.log.append(entry)
    this.route(entry)
  }

  /** A new life of the record (`epoch`, empty, numbered from `seq`): subscribers start counting again. */
  reset(epoch: string, seq: number) {
    // What was routed from the old life goes out first, numbered as it was.
    this.flush()
    this.epoch = epoch
    this.log.skipTo(seq)
    for (const group of this.groups.values()) {
      group.lastSeq = seq
      for (const sub of group.subs) sub.fromSeq = seq
    }
  }

  /** Hands `bytes` to every subscriber, after what it has been given. */
  broadcast(bytes: Uint8Array) {
    this.flush()
    const burst = Connection.makeBurst([bytes])
    for (const group of this.groups.values()) {
      for (const sub of group.subs) this.offer(sub, burst, 0)
    }
    this.schedule()
  }

  // Puts the event in the burst of every group of its topics (once each).
  route(entry: Entry) {
    for (const topic of entry.topics) {
      const groups = this.byTopic.get(topic)
      if (groups === undefined) continue
      for (const group of groups) {
        if (group.lastSeq >= entry.seq) continue
        group.lastSeq = entry.seq
        if (group.frames === undefined) {
          group.frames = []
          group.seqs = []
          this.dirty.push(group)
        }
        group.frames.push(entry.bytes)
        group.seqs.push(entry.seq)
      }
    }
    this.schedule()
  }

  // The next hand-out: after the I/O callbacks of this turn of the event
  // loop (setImmediate, not a microtask), so that the publishes of every
  // request that arrived together go out in one write per subscriber; and,
  // within the coalescing window of the last hand-out's end, at the
  // window's end, joined by whatever is published meanwhile (a subscriber
  // waits at most the window more; a busy feed pays one write per
  // subscriber per window, not per request). A clock that does not move (a
  // test clock) holds nothing.
  private schedule() {
    if (this.scheduled !== undefined || (this.dirty.length === 0 && this.waiting.size === 0)) return
    const window = this.windowNanos
    const since = window === undefined ? 0 : this.nanos() - this.deliveredAt
    if (window !== undefined && since > 0 && since < window) {
      const timer = setTimeout(this.flush, Math.ceil((window - since) / 1e6))
      timer.unref?.()
      this.scheduled = timer
    } else {
      this.scheduled = "immediate"
      setImmediate(this.flush)
    }
  }

  private nanos(): number {
    return Number(this.clock.currentTimeNanosUnsafe())
  }

  // Each group's burst, sealed once, goes to each of its subscribers (from
  // the events it gets live). The subscriber's slow-client strategy applies
  // to what does not fit.
  flush = () => {
    const scheduled = this.scheduled
    this.scheduled = undefined
    if (scheduled !== undefined && scheduled !== "immediate") clearTimeout(scheduled)
    const dirty = this.dirty
    this.dirty = []
    // What is published while this hand-out runs (a sink's callback) waits for the window.
    if (dirty.length > 0) this.deliveredAt = this.nanos()
    let delivered = 0
    for (const sub of this.waiting) {
      if (!sub.live) this.waiting.delete(sub)
      else if (sub.conn !== undefined) {
        this.waiting.delete(sub)
        const held = sub.held!
        sub.held = undefined
        delivered += this.offer(sub, Connection.makeBurst(held), 0)
      }
    }
    for (const group of dirty) {
      const seqs = group.seqs
      const burst = Connection.makeBurst(group.frames!)
      group.frames = undefined
      group.seqs = []
      for (const sub of group.subs) {
        let from = 0
        while (from < seqs.length && seqs[from]! <= sub.fromSeq) from++
        delivered += this.offer(sub, burst, from)
      }
    }
    if (delivered > 0) metrics.deliveries.updateUnsafe(delivered, this.context)
    if (dirty.length > 0) this.deliveredAt = this.nanos()
    this.schedule()
  }

  // Offers `burst[from..]` to a subscriber; the events it took.
  private offer(sub: Subscriber, burst: Connection.Burst, from: number): number {
    if (!sub.live || from >= burst.length) return 0
    const conn = sub.conn
    if (conn === undefined || sub.held !== undefined) {
      // Registered, its connection not made yet (or its earlier frames not offered yet): kept, in order.
      const held = (sub.held ??= [])
      for (let i = from; i < burst.length; i++) held.push(burst[i]!)
      this.waiting.add(sub)
      return 0
    }
    let taken = 0
    let at = from
    while (at < burst.length) {
      const stop = conn.offerBurstUnsafe(burst, at)
      taken += stop - at
      if (stop === burst.length) break
      if (!conn.accepting()) {
        this.remove(sub)
        break
      }
      if (sub.policy === "disconnect") {
        if (conn.killUnsafe("slow_consumer")) metrics.slowConsumers.updateUnsafe(1, this.context)
        this.remove(sub)
        break
      }
      // dropping: that one is dropped (and counted by the connection).
      at = stop + 1
    }
    return taken
  }

  add(sub: Subscriber) {
    sub.live = true
    this.subscriberCount++
    sub.group.subs.add(sub)
    metrics.subscribers.modifyUnsafe(1, this.context)
  }

  // The group of a set of topics (made, and routed to, on first use).
  group(topics: ReadonlySet<string>): Group {
    const key = JSON.stringify([...topics].toSorted())
    let group = this.groups.get(key)
    if (group === undefined) {
      group = { key, topics, subs: new Set(), lastSeq: this.log.lastSeq, frames: undefined, seqs: [] }
      this.groups.set(key, group)
      for (const topic of topics) {
        let groups = this.byTopic.get(topic)
        if (groups === undefined) this.byTopic.set(topic, groups = new Set())
        groups.add(group)
      }
    }
    return group
  }

  remove(sub: Subscriber) {
    if (!sub.live) return
    sub.live = false
    sub.held = undefined
    this.waiting.delete(sub)
    this.subscriberCount--
    const group = sub.group
    group.subs.delete(sub)
    if (group.subs.size === 0) {
      // A group without subscribers is dropped (with whatever was routed to it).
      this.groups.delete(group.key)
      for (const topic of group.topics) {
        const groups = this.byTopic.get(topic)
        if (groups === undefined) continue
        groups.delete(group)
        if (groups.size === 0) this.byTopic.delete(topic)
      }
    }
    metrics.subscribers.modifyUnsafe(-1, this.context)
  }

  gapFrame(reason: Hub.GapReason, lastId: string, resumeSeq: number): Uint8Array {
    return encoder.encode(
      `id: ${this.epoch}-${resumeSeq}\nevent: replay_gap\ndata: ${JSON.stringify({ reason, lastEventId: lastId })}\n\n`
    )
  }

  // What a client with `lastId` missed on `topics`. Synchronous, run in the
  // step that registers the subscriber.
  lookup(lastId: string | undefined, topics: ReadonlySet<string>): {
    readonly replay: Hub.Replay
    readonly frames: ReadonlyArray<Uint8Array>
  } {
    this.log.evict(this.now())
    if (lastId === undefined || lastId === "") return { replay: { _tag: "Live" }, frames: [] }
    let seq = this.log.seqOfCallerId(lastId)
    let reason: Hub.GapReason = "unknown"
    if (seq === undefined) {
      const parsed = parseId(lastId)
      if (parsed !== undefined && parsed.epoch !== this.epoch) reason = "restarted"
      else if (parsed !== undefined && parsed.seq <= this.log.lastSeq) {
        if (parsed.seq >= this.log.firstSeq - 1) seq = parsed.seq
        else reason = "expired"
      }
    }
    if (seq !== undefined) {
      const entries = this.log.after(seq, topics)
      replayResults.resumed.updateUnsafe(1, this.context)
      return {
        replay: { _tag: "Resumed", lastEventId: lastId, replayed: entries.length },
        frames: entries.map((e) => e.bytes)
      }
    }
    const entries = this.log.after(this.log.firstSeq - 1, topics)
    replayResults[reason].updateUnsafe(1, this.context)
    return {
      replay: { _tag: "Gap", lastEventId: lastId, reason, replayed: entries.length },
      frames: [this.gapFrame(reason, lastId, this.log.firstSeq - 1), ...entries.map((e) => e.bytes)]
    }
  }

  subscribe = (
    options: Feed.SubscribeOptions
  ): Effect.Effect<Feed.Subscription, SseEvent.InvalidEventError, Scope.Scope> => this.subscribeHere(options)

  /** Replay fixed and subscriber registered in one synchronous step, from this process's record. */
  subscribeHere(
    options: Feed.SubscribeOptions
  ): Effect.Effect<Feed.Subscription, SseEvent.InvalidEventError, Scope.Scope> {
    const { lastEventId, strategy: policy = "disconnect", preamble, topics, ...connectionOptions } = options
    return Effect.gen({ self: this }, function*() {
      const opening: Array<Uint8Array> = []
      for (const frame of preamble ?? []) {
        const bytes = SseEncoder.encodeResult(frame)
        if (Result.isFailure(bytes)) return yield* Effect.fail(bytes.failure)
        opening.push(bytes.success)
      }
      const topicSet = new Set(topics)
      // One synchronous step: the replay is fixed and the subscriber
      // registered, so every event is either replayed or routed to it, never
      // both or neither. What is routed before its connection exists waits
      // in its burst; the replay goes in the connection's preamble, which is
      // written before anything offered.
      const found = this.lookup(lastEventId, topicSet)
      const sub: Subscriber = {
        conn: undefined,
        group: this.group(topicSet),
        policy,
        live: false,
        fromSeq: this.log.lastSeq,
        held: undefined
      }
      this.add(sub)
      yield* Effect.addFinalizer(() => Effect.sync(() => this.remove(sub)))
      const connection = yield* Connection.make({
        ...connectionOptions,
        strategy: policy === "disconnect" ? "suspend" : policy,
        preamble: found.frames.length === 0 ? opening : [...opening, ...found.frames]
      })
      sub.conn = connection
      connection.addObserver(() => this.remove(sub))
      return { connection, replay: found.replay }
    })
  }
}
