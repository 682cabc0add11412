/**
 * A feed whose record is a shared `Log` (on Redis: one stream for every
 * topic, appended to by every gateway process): one sequence of ids across
 * processes, so an id handed out by one resumes on any other.
 *
 * ```text
 * publish ─validate─▶ log.append (topics in a comment line, ids from the log) ─▶ Redis
 *                                                                                 │ tail, in order, on every process
 * subscribers ◀── route by topic ◀── mirror (this process's copy of the record) ◀─┘
 * subscribe(lastEventId) ─▶ replay from the mirror (after it caught up with the record, when the id is ahead of it)
 * ```
 *
 * Each process keeps a mirror of the record in the memory feed's own
 * structures (bounded by the same history), filled from the log's tail in
 * sequence order: a hole (a jump, `Missed`) is read from the record before
 * anything newer; a new epoch (the record was lost) starts the mirror again
 * and tells live subscribers with a `replay_gap` (`restarted`). Replay and
 * registration are then one synchronous step on the mirror, as in memory.
 * An id the mirror does not know yet (published through another process a
 * moment ago) is waited for: the mirror catches up with the record's
 * position as it was when the subscriber came (bounded by `syncMillis`).
 *
 * Each entry's topics travel in its first field line, an SSE comment
 * (`: topics ["a","b"]`), removed before the event is written to a client.
 *
 * @internal
 */
import { type Hub, Log, SseEncoder, SseEvent } from "@sluice/core"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type * as Feed from "../../Feed.ts"
import { type Entry } from "./log.ts"
import { MemoryFeed, parseId } from "./memory.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const topicsPrefix = ": topics "
// One read of the record: at most this much at a time.
const readBudget: Log.Budget = { maxEvents: 1_024, maxBytes: 1_048_576 }
// Failed reads of a hole before it is given up (with a gap signal).
const readAttempts = 6

/** An entry of the record as clients get it: its topics and the frame without the topics line. @internal */
export const parseFrame = (
  frame: Uint8Array,
  epoch: string,
  seq: number,
  at: number
): Entry => {
  const text = decoder.decode(frame)
  const idEnd = text.indexOf("\n")
  const id = text.slice(4, idEnd)
  let topics: ReadonlyArray<string> = []
  let rest = text.slice(idEnd + 1)
  if (rest.startsWith(topicsPrefix)) {
    const lineEnd = rest.indexOf("\n")
    try {
      const parsed = JSON.parse(rest.slice(topicsPrefix.length, lineEnd)) as unknown
      if (Array.isArray(parsed)) topics = parsed.filter((t): t is string => typeof t === "string")
    } catch {
      // Not ours: routed nowhere, but its position is kept.
    }
    rest = rest.slice(lineEnd + 1)
  }
  return {
    seq,
    id,
    topics,
    // From Node's shared pool: no buffer of its own per event.
    bytes: Buffer.from(`${text.slice(0, idEnd + 1)}${rest}`, "utf8"),
    at,
    callerId: id !== Log.formatId(epoch, seq)
  }
}

type Change = Log.Change

interface Waiter {
  readonly epoch: string
  readonly seq: number
  readonly done: Deferred.Deferred<void>
}

/** @internal */
export class SharedFeed extends MemoryFeed {
  readonly shared: Log.Log
  readonly syncMillis: number
  // While a catch-up runs: the changes that arrived meanwhile, in order.
  private held: Array<Change> | undefined = []
  private readonly waiters = new Set<Waiter>()
  private run: (effect: Effect.Effect<void>) => void = () => {}

  constructor(
    shared: Log.Log,
    options: Feed.Options & { readonly syncMillis: number },
    clock: Clock.Clock,
    context: Context.Context<never>
  ) {
    super({ ...options, epoch: shared.position().epoch }, clock, context)
    this.shared = shared
    this.syncMillis = options.syncMillis
  }

  /** Listens to the tail, loads the record, then applies what arrived meanwhile. */
  start(): Effect.Effect<void, Log.LogError, Scope.Scope> {
    return Effect.gen({ self: this }, function*() {
      const runtime = yield* FiberSet.makeRuntime<never, void, never>()
      this.run = (effect) => {
        runtime(effect)
      }
      const unlisten = this.shared.listen(this.onChange)
      yield* Effect.addFinalizer(() => Effect.sync(unlisten))
      const budget = { maxEvents: Math.max(1, this.log.limits.maxEvents), maxBytes: this.log.limits.maxBytes }
      const newest = yield* this.shared.read(Log.newest(budget))
      const entries = newest._tag === "Found" ? newest.entries : []
      this.reset(newest.epoch, entries.length > 0 ? entries[0]!.seq - 1 : newest.lastSeq)
      this.apply(entries)
      this.drain(undefined)
    })
  }

  // ---------------------------------------------------------------------------
  // The mirror

  /** Entries read from the record (in order; those already here are skipped). */
  private apply(entries: ReadonlyArray<Log.Entry>) {
    const at = this.now()
    for (const e of entries) {
      if (e.seq !== this.log.lastSeq + 1) continue
      this.record(parseFrame(e.frame, this.epoch, e.seq, at))
    }
    this.wake()
  }

  private applyFrames(firstSeq: number, frames: ReadonlyArray<Uint8Array>) {
    const at = this.now()
    for (let i = 0; i < frames.length; i++) {
      const seq = firstSeq + i
      if (seq !== this.log.lastSeq + 1) continue
      this.record(parseFrame(frames[i]!, this.epoch, seq, at))
    }
    this.wake()
  }

  /** A new life of the record: live subscribers are told, then get it from its start. */
  private restart(epoch: string) {
    this.reset(epoch, 0)
    this.broadcast(encoder.encode(
      `id: ${Log.formatId(epoch, 0)}\nevent: replay_gap\ndata: ${JSON.stringify({ reason: "restarted" })}\n\n`
    ))
  }

  /** Entries the record no longer has: live subscribers are told, and the mirror goes on after them. */
  private skip(reason: Hub.GapReason, seq: number) {
    this.log.skipTo(seq)
    this.broadcast(encoder.encode(
      `id: ${Log.formatId(this.epoch, seq)}\nevent: replay_gap\ndata: ${JSON.stringify({ reason })}\n\n`
    ))
  }

  private readonly onChange = (change: Change): void => {
    if (this.held !== undefined) {
      this.held.push(change)
      return
    }
    this.drain(change)
  }

  // Applies `first`, then what was held, until something must be read.
  private drain(first: Change | undefined) {
    let change = first
    while (true) {
      if (change === undefined) {
        const next = this.held?.shift()
        if (next === undefined) {
          this.held = undefined
          return
        }
        change = next
      }
      if (!this.step(change)) {
        this.held = [change, ...(this.held ?? [])]
        this.run(this.catchUp())
        return
      }
      change = undefined
    }
  }

  // Applies one change now; `false` when the record must be read first.
  private step(change: Change): boolean {
    if (change.epoch !== this.epoch) {
      this.restart(change.epoch)
      return false
    }
    switch (change._tag) {
      case "EpochChanged":
        return change.seq <= this.log.lastSeq
      case "Missed":
        return change.afterSeq < this.log.lastSeq
      case "Appended":
        if (change.firstSeq > this.log.lastSeq + 1) return false
        this.applyFrames(change.firstSeq, change.frames)
        return true
    }
  }

  // Reads the record after the mirror's position until nothing is left out,
  // then goes on with the held changes.
  private catchUp(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      const held = this.held!
      // The change that asked for the read is answered by the read.
      const first = held.shift()
      yield* this.fill()
      if (first !== undefined && first._tag === "Appended" && first.epoch === this.epoch) {
        // A hole the record could not fill (it did not answer): taken, with a gap signal.
        if (first.firstSeq > this.log.lastSeq + 1) this.skip("unknown", first.firstSeq - 1)
        this.applyFrames(first.firstSeq, first.frames)
      }
      this.held = held
      this.drain(undefined)
    })
  }

  private fill(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      let failures = 0
      while (true) {
        const read = yield* Effect.exit(
          this.shared.read(Log.afterSeq(this.epoch, this.log.lastSeq, readBudget))
        )
        if (Exit.isFailure(read)) {
          if (++failures === readAttempts) return
          yield* Effect.sleep(100 * 2 ** failures)
          continue
        }
        const result = read.value
        if (result._tag === "NotFound") {
          if (result.epoch !== this.epoch) {
            this.restart(result.epoch)
            continue
          }
          // The hole is gone from the record: on from the oldest entry it still has.
          const newest = yield* Effect.exit(this.shared.read(Log.newest(readBudget)))
          if (Exit.isFailure(newest) || newest.value._tag === "NotFound") return
          const entries = newest.value.entries
          this.skip(result.reason, entries.length > 0 ? entries[0]!.seq - 1 : newest.value.lastSeq)
          this.apply(entries)
          return
        }
        this.apply(result.entries)
        if (result.complete || result.entries.length === 0) return
      }
    })
  }

  private wake() {
    for (const w of this.waiters) {
      if (w.epoch === this.epoch && w.seq <= this.log.lastSeq) {
        this.waiters.delete(w)
        Deferred.doneUnsafe(w.done, Effect.void)
      }
    }
  }

  // ---------------------------------------------------------------------------
  // Publishing and subscribing

  override publish = (
    events: ReadonlyArray<Feed.PublishInput>
  ): Effect.Effect<ReadonlyArray<Feed.Published>, Feed.PublishError | Log.LogError> =>
    Effect.suspend(() => {
      // Everything is checked before anything is appended: all or nothing.
      const entries: Array<Log.NewEntry> = []
      for (const input of events) {
        const fields = this.fields(input)
        if (typeof fields !== "string") return Effect.fail(fields)
        entries.push({ fields, id: input.id })
      }
      return Effect.map(this.shared.append(entries), (recorded) => {
        this.published += events.length
        if (recorded.length > 0) this.lastEventId = recorded[recorded.length - 1]!.id
        return recorded.map((r) => ({ id: r.id, seq: r.seq }))
      })
    })

  // The entry's fields: the topics line, then the event without its id
  // (the log writes it); checked against the size limit with the longest id
  // the log can give it.
  private fields(input: Feed.PublishInput): string | Feed.PublishError {
    if (input.id === "") {
      return new SseEvent.InvalidEventError({ field: "id", reason: "an empty id cannot be resumed" })
    }
    const longest = input.id ?? `${this.epoch}-${Number.MAX_SAFE_INTEGER}`
    const checked = this.encode(input, longest)
    if (!(checked instanceof Uint8Array)) return checked
    const text = SseEncoder.encodeText(SseEvent.make({ event: input.event, data: input.data }))
    if (Result.isFailure(text)) return text.failure
    return `${topicsPrefix}${JSON.stringify(input.topics)}\n${text.success}`
  }

  override subscribe = (
    options: Feed.SubscribeOptions
  ): Effect.Effect<Feed.Subscription, SseEvent.InvalidEventError, Scope.Scope> =>
    Effect.andThen(this.caughtUp(options.lastEventId), this.subscribeHere(options))

  // An id this process cannot place yet: wait (bounded) until the mirror has
  // what the record held when the subscriber came.
  private caughtUp(lastId: string | undefined): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      if (lastId === undefined || lastId === "" || this.knows(lastId)) return
      const position = yield* Effect.exit(this.shared.read(Log.newest({ maxEvents: 1, maxBytes: 1 })))
      if (Exit.isFailure(position)) return
      const { epoch, lastSeq } = position.value
      if (epoch === this.epoch && lastSeq <= this.log.lastSeq) return
      const done = Deferred.makeUnsafe<void>()
      const waiter: Waiter = { epoch, seq: lastSeq, done }
      this.waiters.add(waiter)
      yield* Effect.ensuring(
        Effect.timeoutOption(Deferred.await(done), this.syncMillis),
        Effect.sync(() => this.waiters.delete(waiter))
      )
    })
  }

  private knows(lastId: string): boolean {
    if (this.log.seqOfCallerId(lastId) !== undefined) return true
    const parsed = parseId(lastId)
    return parsed !== undefined && parsed.epoch === this.epoch && parsed.seq <= this.log.lastSeq
  }
}

/** @internal */
export const make = (
  log: Log.Log,
  options: Feed.Options & { readonly syncMillis?: number | undefined } = {}
): Effect.Effect<Feed.Service, Log.LogError, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const context = yield* Effect.context<never>()
    const feed = new SharedFeed(log, { ...options, syncMillis: options.syncMillis ?? 2_000 }, clock, context)
    yield* feed.start()
    return feed
  })
