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
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import type * as Feed from "../../Feed.ts"
import * as metrics from "../metrics.ts"
import { type Entry, Log } from "./log.ts"

interface Subscriber {
  /** Set once the connection exists (it is registered a step before, with its replay fixed). */
  conn: Connection.Connection | undefined
  readonly topics: ReadonlySet<string>
  readonly policy: Feed.Strategy
  live: boolean
  /** The last sequence number handed to it (dedupes an event on several of its topics). */
  lastSeq: number
  /** Events of the current burst, not yet offered. */
  burst: Array<Uint8Array> | undefined
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

/** @internal */
export const make = (options: Feed.Options = {}): Effect.Effect<Feed.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    check("history.maxEvents", options.history?.maxEvents, 0)
    check("history.maxBytes", options.history?.maxBytes, 0)
    check("history.maxAgeMillis", options.history?.maxAgeMillis, 0)
    check("maxEventBytes", options.maxEventBytes, 1)
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
  readonly byTopic = new Map<string, Set<Subscriber>>()
  subscriberCount = 0
  published = 0
  lastEventId: string | undefined = undefined
  dirty: Array<Subscriber> = []
  flushScheduled = false
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
    const text = SseEncoder.encodeText(SseEvent.make({ id, event: input.event, data: input.data }))
    if (Result.isFailure(text)) return text.failure
    const bytes = encoder.encode(text.success)
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
    this.epoch = epoch
    this.log.skipTo(seq)
    for (const subs of this.byTopic.values()) for (const sub of subs) sub.lastSeq = seq
  }

  /** Hands `bytes` to every subscriber (once each), after what it has been given. */
  broadcast(bytes: Uint8Array) {
    const seen = new Set<Subscriber>()
    for (const subs of this.byTopic.values()) {
      for (const sub of subs) {
        if (seen.has(sub)) continue
        seen.add(sub)
        this.enqueue(sub, bytes)
      }
    }
    this.schedule()
  }

  private enqueue(sub: Subscriber, bytes: Uint8Array) {
    if (sub.burst === undefined) {
      sub.burst = []
      this.dirty.push(sub)
    }
    sub.burst.push(bytes)
  }

  private schedule() {
    if (this.dirty.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.flush)
    }
  }

  // Puts the event in the burst of every subscriber of its topics (once each).
  route(entry: Entry) {
    for (const topic of entry.topics) {
      const subs = this.byTopic.get(topic)
      if (subs === undefined) continue
      for (const sub of subs) {
        if (sub.lastSeq >= entry.seq) continue
        sub.lastSeq = entry.seq
        this.enqueue(sub, entry.bytes)
      }
    }
    this.schedule()
  }

  // After the I/O callbacks of this turn of the event loop (setImmediate,
  // not a microtask): publishes of every request that arrived together are
  // handed to each subscriber in one offer, so one write per subscriber
  // carries them all instead of one write per request. The subscriber's
  // slow-client strategy applies to what does not fit.
  flush = () => {
    this.flushScheduled = false
    const dirty = this.dirty
    this.dirty = []
    let delivered = 0
    for (const sub of dirty) {
      const conn = sub.conn
      if (!sub.live) {
        sub.burst = undefined
        continue
      }
      // Registered, its connection not made yet: it keeps its burst for the next hand-out.
      if (conn === undefined) {
        this.dirty.push(sub)
        continue
      }
      const burst = sub.burst!
      sub.burst = undefined
      let at = 0
      while (at < burst.length) {
        const stop = conn.offerManyUnsafe(burst, at)
        delivered += stop - at
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
    }
    if (delivered > 0) metrics.deliveries.updateUnsafe(delivered, this.context)
    this.schedule()
  }

  add(sub: Subscriber) {
    sub.live = true
    this.subscriberCount++
    for (const topic of sub.topics) {
      let subs = this.byTopic.get(topic)
      if (subs === undefined) this.byTopic.set(topic, subs = new Set())
      subs.add(sub)
    }
    metrics.subscribers.modifyUnsafe(1, this.context)
  }

  remove(sub: Subscriber) {
    if (!sub.live) return
    sub.live = false
    this.subscriberCount--
    for (const topic of sub.topics) {
      const subs = this.byTopic.get(topic)
      if (subs === undefined) continue
      subs.delete(sub)
      if (subs.size === 0) this.byTopic.delete(topic)
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
        topics: topicSet,
        policy,
        live: false,
        lastSeq: this.log.lastSeq,
        burst: undefined
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
