/**
 * The record behind a hub: an ordered, bounded log of encoded SSE events.
 *
 * A hub is a local fan-out over a log. The log owns what is *recorded*:
 * positions (sequence numbers), ids (`<epoch>-<seq>`), the epoch, history
 * bounds, reading what a client missed, and the live tail in order. The hub
 * keeps what only a process can do: validation, per-subscriber mailboxes and
 * slow-client policies, heartbeats.
 *
 * ```text
 * Hub.publish ─validate─▶ append(burst) ─▶ Log ─▶ tail: Appended(burst) ─▶ hub fan-out ─▶ mailboxes ─▶ sockets
 *                                           ▲
 * Hub.subscribe(lastEventId) ─read(after id)─┘   then live from the tail: no gap, no duplicate
 * ```
 *
 * Two implementations: {@link makeMemory} (this process, the default of every
 * hub) and a Redis one in `@sluice/redis` (one stream per log, shared by many
 * processes). A {@link Store} opens logs by name: `Topics` backs its hubs with
 * the `Store` in context when there is one, in-memory logs otherwise.
 *
 * What every implementation guarantees (the hub relies on each):
 * - **Positions**: within an epoch, entries have contiguous sequence numbers
 *   1, 2, 3, … in the order they were appended. An entry's id is the
 *   publisher's, or {@link formatId}`(epoch, seq)`; its frame is
 *   {@link frameText}`(id, fields)` in UTF-8 and never changes.
 * - **Epochs**: the epoch names one life of the record (lower-case letters and
 *   digits). When the record is lost (Redis restarted empty, the key was
 *   evicted) the epoch changes and sequence numbers start again; reads answer
 *   ids of another epoch with `NotFound` / `restarted`.
 * - **The tail, in order**: listeners receive `Appended` changes in sequence
 *   order, each entry once. When a log cannot vouch for that (it reconnected,
 *   it saw a jump) it says `Missed` and the hub reads the hole from the
 *   record; when the epoch changes it says `EpochChanged`. Never a silent gap.
 * - **Bounded**: the history by count, bytes and age; every read by its
 *   request's `maxEvents` and `maxBytes`.
 * - **Typed failures**: an asynchronous log fails `append` and `read` with
 *   {@link LogError}. An append that failed may or may not have been recorded
 *   (a timeout cannot tell); one that succeeded is in the record.
 *
 * An asynchronous log (a remote record) implements `append`, `read` and the
 * tail; a log that lives in this process also offers {@link Synchronous}, the
 * same operations as plain calls: its hub then publishes without a fiber
 * (`Hub.publishUnsafe`) and fixes a subscriber's replay and registration in
 * one synchronous step.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as ids from "./internal/log/ids.ts"
import * as memory from "./internal/log/memory.ts"
import * as model from "./internal/log/model.ts"
import { check } from "./internal/options.ts"

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: typeof model.TypeId = model.TypeId

/**
 * An append or read that did not complete: the remote record did not answer,
 * refused, or timed out. Names the log and the operation.
 *
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * const error = new Log.LogError({ log: "ticker", operation: "append", reason: "redis 127.0.0.1:6379 did not answer within 2000 ms" })
 * error.message // 'log "ticker": append failed: redis 127.0.0.1:6379 did not answer within 2000 ms'
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const LogError: typeof model.LogError = model.LogError

/**
 * @since 0.2.0
 * @category errors
 */
export type LogError = model.LogError

/**
 * A log: one record (a topic's), read and appended by the hubs over it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Log {
  readonly [TypeId]: typeof TypeId
  /** The log's name (a topic), for errors and metrics. */
  readonly name: string
  /**
   * Where the tail stands: the current epoch, and the last sequence number
   * the tail has handed to listeners (an in-memory log: the last appended).
   * A listener added with {@link Log.listen} in the same synchronous step
   * receives every change after this position.
   */
  readonly position: () => Position
  /**
   * Records a burst, in order, in one operation (a remote log: one round
   * trip). Succeeds with each entry's position, in the same order. The
   * entries reach the tail as `Appended` changes like any other.
   */
  readonly append: (entries: ReadonlyArray<NewEntry>) => Effect.Effect<ReadonlyArray<Recorded>, LogError>
  /** Reads from the record, bounded by the request. See {@link ReadRequest} and {@link ReadResult}. */
  readonly read: (request: ReadRequest) => Effect.Effect<ReadResult, LogError>
  /**
   * Adds a listener to the live tail and returns the function that removes
   * it. Listeners are called synchronously, in order, from whatever delivers
   * the tail (an in-memory log: the end of the publishing run), and must not
   * throw.
   */
  readonly listen: (listener: (change: Change) => void) => () => void
  /** What this process holds of the record (for a remote log, usually nothing). */
  readonly stats: () => Stats
  /** The plain-call side of a log that lives in this process; `undefined` for a remote log. */
  readonly synchronous: Synchronous | undefined
}

/**
 * The plain-call side of a log that lives in this process.
 *
 * @since 0.2.0
 * @category models
 */
export interface Synchronous {
  /** Sequence number of the last entry appended (0 before the first). */
  readonly lastSeq: () => number
  /**
   * Appends one entry now and returns its id; its sequence number is
   * `lastSeq()` afterwards. The entries appended in one synchronous run reach
   * the tail together, as one `Appended` change, at the end of the run (a
   * microtask) or at {@link Synchronous.flush}, whichever comes first.
   */
  readonly append: (fields: string, id: string | undefined) => string
  /** Hands what was appended, and is not yet on the tail, to the listeners now. */
  readonly flush: () => void
  /** {@link Log.read} as a plain call: it sees every entry appended so far, also those not yet on the tail. */
  readonly read: (request: ReadRequest) => ReadResult
}

/**
 * A position in a log: an epoch and a sequence number in it (0: before the
 * first entry).
 *
 * @since 0.2.0
 * @category models
 */
export interface Position {
  readonly epoch: string
  readonly seq: number
}

/**
 * An event to append: validated and written as SSE text, waiting for its
 * position.
 *
 * @since 0.2.0
 * @category models
 */
export interface NewEntry {
  /**
   * The event's fields as SSE text without the id line, ending with the
   * blank line (`event: tick\ndata: 1\n\n`).
   */
  readonly fields: string
  /** The publisher's own id (already validated); without it the log assigns `<epoch>-<seq>`. */
  readonly id: string | undefined
}

/**
 * Where an appended entry was recorded.
 *
 * @since 0.2.0
 * @category models
 */
export interface Recorded {
  readonly seq: number
  readonly id: string
}

/**
 * An entry read from the record.
 *
 * @since 0.2.0
 * @category models
 */
export interface Entry {
  readonly seq: number
  readonly id: string
  /** The whole wire frame, id line first. Never changed once recorded. */
  readonly frame: Uint8Array
}

/**
 * What this process holds of a log.
 *
 * @since 0.2.0
 * @category models
 */
export interface Stats {
  /** Entries retained here. */
  readonly events: number
  /** Their bytes. */
  readonly bytes: number
  /** Clock time (ms) at which the newest retained entry expires, if there is an age limit and an entry. */
  readonly expiresAt: number | undefined
}

/**
 * History bounds of a log. An entry leaves as soon as any bound is exceeded,
 * oldest first. Limits that are not numbers, or that leave both the count
 * and the bytes unlimited, are a defect of the constructor, naming the option.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Most entries retained. Default 1000; `0` keeps none. */
  readonly maxEvents?: number | undefined
  /** Most bytes retained (encoded frames). Default 1 MiB. */
  readonly maxBytes?: number | undefined
  /** Age limit, on the Effect `Clock`. Default 1 hour; `Infinity` for none. */
  readonly maxAge?: Duration.Input | undefined
}

/**
 * Options of an in-memory log.
 *
 * @since 0.2.0
 * @category models
 */
export interface MemoryOptions extends Options {
  /** The log's name. Default `"memory"`. */
  readonly name?: string | undefined
  /**
   * Its epoch. Default: random (6 base-36 characters, short because it is in every id). An in-memory record
   * dies with the process, so give a fixed one only for tests.
   */
  readonly epoch?: string | undefined
}

// -----------------------------------------------------------------------------
// The tail

/**
 * What the live tail reports:
 * - `Appended`: entries `firstSeq`, `firstSeq + 1`, … in epoch `epoch`, as
 *   their frames. The array and its bytes are handed over: neither ever
 *   changes afterwards (hubs share them between subscribers).
 * - `Missed`: the log may have missed entries after `afterSeq` (it
 *   reconnected, a message was lost); what follows may not continue from
 *   there. The hub reads the hole from the record before anything newer.
 * - `EpochChanged`: the record was lost and starts again as `epoch`; the
 *   tail continues after `seq` of the new epoch.
 *
 * @since 0.2.0
 * @category models
 */
export type Change =
  | {
    readonly _tag: "Appended"
    readonly epoch: string
    readonly firstSeq: number
    readonly frames: ReadonlyArray<Uint8Array>
  }
  | { readonly _tag: "Missed"; readonly epoch: string; readonly afterSeq: number }
  | { readonly _tag: "EpochChanged"; readonly epoch: string; readonly seq: number }

/**
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * // A remote log's tail, telling its hubs what happened:
 * const frames = [new TextEncoder().encode("id: k3x-7\ndata: 1\n\n")]
 * const changes: ReadonlyArray<Log.Change> = [
 *   Log.appended("k3x", 7, frames), // entries 7.. in epoch k3x
 *   Log.missed("k3x", 7), // a message may have been lost after 7: read the hole
 *   Log.epochChanged("p0q", 0) // the record was lost; it starts again as p0q
 * ]
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const appended = (epoch: string, firstSeq: number, frames: ReadonlyArray<Uint8Array>): Change => ({
  _tag: "Appended",
  epoch,
  firstSeq,
  frames
})

/**
 * @since 0.2.0
 * @category constructors
 */
export const missed = (epoch: string, afterSeq: number): Change => ({ _tag: "Missed", epoch, afterSeq })

/**
 * @since 0.2.0
 * @category constructors
 */
export const epochChanged = (epoch: string, seq: number): Change => ({ _tag: "EpochChanged", epoch, seq })

// -----------------------------------------------------------------------------
// Reading

/**
 * How much one read may return: at most `maxEvents` entries and `maxBytes`
 * bytes of frames (always at least one entry when one is there and
 * `maxEvents` is at least 1, so a read makes progress).
 *
 * @since 0.2.0
 * @category models
 */
export interface Budget {
  readonly maxEvents: number
  readonly maxBytes: number
}

/**
 * What to read:
 * - `AfterId`: the entries after the one with this id (a client's
 *   `Last-Event-ID`: the publisher's own id, or `<epoch>-<seq>`);
 * - `AfterSeq`: the entries after a position (how a hub refills a hole in
 *   its tail);
 * - `Newest`: the newest entries.
 *
 * @since 0.2.0
 * @category models
 */
export type ReadRequest =
  | { readonly _tag: "AfterId"; readonly id: string; readonly budget: Budget }
  | { readonly _tag: "AfterSeq"; readonly epoch: string; readonly seq: number; readonly budget: Budget }
  | { readonly _tag: "Newest"; readonly budget: Budget }

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Log } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const log = yield* Log.makeMemory({ epoch: "k3x" })
 *   const budget = { maxEvents: 100, maxBytes: 65_536 }
 *   const missed = yield* log.read(Log.afterId("k3x-3", budget)) // what a client at k3x-3 missed
 *   const newest = yield* log.read(Log.newest(budget))
 *   const hole = yield* log.read(Log.afterSeq("k3x", 5, budget))
 *   return [missed._tag, newest._tag, hole._tag]
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const afterId = (id: string, budget: Budget): ReadRequest => ({ _tag: "AfterId", id, budget })

/**
 * @since 0.2.0
 * @category constructors
 */
export const afterSeq = (epoch: string, seq: number, budget: Budget): ReadRequest => ({
  _tag: "AfterSeq",
  epoch,
  seq,
  budget
})

/**
 * @since 0.2.0
 * @category constructors
 */
export const newest = (budget: Budget): ReadRequest => ({ _tag: "Newest", budget })

/**
 * Why a read found no starting point:
 * - `expired`: the position is older than what the record retains;
 * - `restarted`: it belongs to another epoch (the record was lost since);
 * - `unknown`: the id matches nothing retained, or is ahead of the record.
 *
 * @since 0.2.0
 * @category models
 */
export type NotFoundReason = "expired" | "restarted" | "unknown"

/**
 * What a read returns, always with the record's `epoch` and `lastSeq` at the
 * moment it read (`Q`):
 * - `Found`: the starting point exists; `entries` follow it, oldest first
 *   (for `Newest`: the newest entries, oldest first). `complete` says the
 *   budget left nothing out: after an id or a position, the entries run up
 *   to `lastSeq`; for `Newest`, they are everything retained.
 * - `NotFound`: there is no such starting point (see {@link NotFoundReason}).
 *
 * @since 0.2.0
 * @category models
 */
export type ReadResult =
  | {
    readonly _tag: "Found"
    readonly epoch: string
    readonly lastSeq: number
    readonly entries: ReadonlyArray<Entry>
    readonly complete: boolean
  }
  | {
    readonly _tag: "NotFound"
    readonly epoch: string
    readonly lastSeq: number
    readonly reason: NotFoundReason
  }

/**
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * // What a log implementation answers to a read:
 * const nothingYet: Log.ReadResult = Log.found("k3x", 0, [], true)
 * const gone: Log.ReadResult = Log.notFound("k3x", 120, "expired")
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const found = (
  epoch: string,
  lastSeq: number,
  entries: ReadonlyArray<Entry>,
  complete: boolean
): ReadResult => ({ _tag: "Found", epoch, lastSeq, entries, complete })

/**
 * @since 0.2.0
 * @category constructors
 */
export const notFound = (epoch: string, lastSeq: number, reason: NotFoundReason): ReadResult => ({
  _tag: "NotFound",
  epoch,
  lastSeq,
  reason
})

// -----------------------------------------------------------------------------
// Ids and frames

/**
 * Whether `epoch` can name a log's life: lower-case letters and digits.
 *
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * Log.isValidEpoch("k3x9") // true
 * Log.isValidEpoch("K3X") // false: lower-case letters and digits only
 * ```
 *
 * @since 0.2.0
 * @category ids
 */
export const isValidEpoch: (epoch: string) => boolean = ids.isValidEpoch

/**
 * The id a log assigns: `<epoch>-<seq>`.
 *
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * Log.formatId("k3x", 42) // "k3x-42"
 * ```
 *
 * @since 0.2.0
 * @category ids
 */
export const formatId: (epoch: string, seq: number) => string = ids.format

/**
 * Reads an id in the log format, or `undefined` for anything else (a
 * publisher's own id, garbage).
 *
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * Log.parseId("k3x-42") // { epoch: "k3x", seq: 42 }
 * Log.parseId("order-7x") // undefined
 * ```
 *
 * @since 0.2.0
 * @category ids
 */
export const parseId: (id: string) => Position | undefined = ids.parse

/**
 * An entry's wire text: its id line, then its fields.
 *
 * @example
 * ```ts
 * import { Log } from "@sluice/core"
 *
 * Log.frameText("k3x-42", "event: tick\ndata: 1\n\n") // "id: k3x-42\nevent: tick\ndata: 1\n\n"
 * ```
 *
 * @since 0.2.0
 * @category ids
 */
export const frameText: (id: string, fields: string) => string = ids.frameText

// -----------------------------------------------------------------------------
// Store

/**
 * Opens logs by name. Provide one (an in-memory store with
 * {@link layerMemory}, a Redis one from `@sluice/redis`) and `Topics.make`
 * backs every topic's hub with `open(topic)`; without one, topics keep
 * in-memory logs.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Log, Topics } from "@sluice/core"
 *
 * // Topics.make backs every topic with the store in context.
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const rooms = yield* Topics.make()
 *   yield* Topics.publish(rooms, "lobby", { data: "hi" })
 * })).pipe(Effect.provide(Log.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class Store extends Context.Service<Store, {
  /** Opens (or joins) the log `name`; it is released when the scope closes. */
  readonly open: (name: string, options?: Options) => Effect.Effect<Log, LogError, Scope.Scope>
}>()("@sluice/core/Log/Store") {}

/**
 * An in-memory log: the record of a hub in this process, the default of
 * every hub. It never fails, offers {@link Synchronous}, and its epoch never
 * changes (a new log is a new epoch). Bounds that cannot work (not numbers,
 * or both the count and the bytes unlimited) and an epoch that is not
 * lower-case letters and digits are a defect naming the option.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub, Log } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const log = yield* Log.makeMemory({ name: "prices", maxEvents: 500, maxAge: "10 minutes" })
 *   const hub = yield* Hub.make({ log })
 *   yield* Hub.publish(hub, { data: "1" })
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (options: MemoryOptions = {}): Effect.Effect<Log> =>
  Effect.gen(function*() {
    const bounds = memory.limits("Log.makeMemory", "", options)
    check(
      "Log.makeMemory",
      "epoch (lower-case letters and digits)",
      options.epoch === undefined || ids.isValidEpoch(options.epoch),
      JSON.stringify(options.epoch)
    )
    const random = yield* Random.Random
    const epoch = options.epoch ?? ids.randomEpoch(() => random.nextDoubleUnsafe(), ids.logEpochLength)
    return memory.makeUnsafe(options.name ?? "memory", epoch, bounds, yield* Clock.Clock)
  })

/**
 * A {@link Store} of in-memory logs: every `open` makes a new log (a new
 * epoch), released with its scope. With it, `Topics` behaves as without a
 * store; it is the reference for other stores and for tests.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Log } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const store = yield* Log.Store
 *   const log = yield* store.open("prices", { maxEvents: 100 })
 *   return log.name // "prices"
 * })).pipe(Effect.provide(Log.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Store> = Layer.effect(
  Store,
  Effect.map(
    Effect.context<never>(),
    (context) =>
      Store.of({
        open: (name, options) => Effect.provideContext(makeMemory({ ...options, name }), context)
      })
  )
)

/**
 * `true` for a {@link Log}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Log } from "@sluice/core"
 *
 * const program = Effect.map(Log.makeMemory(), (log) => Log.isLog(log)) // true
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isLog = (u: unknown): u is Log => typeof u === "object" && u !== null && TypeId in u
