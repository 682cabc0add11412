/**
 * A broadcast hub: publish an event once, every subscriber receives it.
 *
 * ```text
 * publish ──validate──▶ Log (ids, history: count / bytes / age) ──tail: the burst, encoded once
 *                                                       │
 *              same bytes, one offer each ──────────────┴──▶ [mailbox] ─▶ writer ─▶ sink   (subscriber 1)
 *                                                            [mailbox] ─▶ writer ─▶ sink   (subscriber 2) …
 * ```
 *
 * A hub is a local fan-out over a log (see `Log`): an in-memory one by
 * default, or a remote one (Redis) shared by many processes, each with its
 * own hub fanning out the same record to its own subscribers.
 *
 * Each subscriber is a connection actor (see `Connection`) with its own
 * bounded mailbox and its own slow-client {@link Strategy}. A publish encodes
 * the event a single time and offers the same bytes to every mailbox, without
 * waiting for any of them (except under `suspend`, and then at most that
 * subscriber's timeout), so one slow client never stalls the others or their
 * heartbeats.
 *
 * What it guarantees:
 * - **One order**: every subscriber sees events in the hub's order (the order
 *   of the assigned sequence numbers), also with concurrent publishers and
 *   while a publisher waits for a subscriber under `suspend`.
 * - **Validation first**: a rejected publish (too large, type outside the
 *   allowlist, invalid id or event, unserializable data) touches no
 *   subscriber and no history and fails with a typed error.
 * - **Replay**: events carry ids (the log assigns `<epoch>-<seq>` unless the
 *   publisher gives one). `subscribe({ lastEventId })` writes the retained
 *   events after that id, then live events, with no gap and no duplicate: the
 *   subscriber is registered and the replayed suffix is fixed in one
 *   synchronous step (over a remote log: a hand-off that keeps live events
 *   aside while the record is read), and the replayed frames are written
 *   before anything in the mailbox.
 * - **Replay is bounded per request**: an id older than the history, unknown,
 *   or from another life of the log (a restart: the epoch differs), and a
 *   client that missed more than the {@link Options.replayBudget} (1000 events
 *   and 256 KiB by default), get a gap signal ({@link Replay}, a `replay_gap`
 *   event whose id is where the client now stands) and then live events only:
 *   never the whole history, so that no request of a few bytes can make the
 *   server send megabytes. `onGap: "replay-retained"` adds the newest
 *   retained events within the budget instead (a bounded tail).
 * - **Bounded memory**: history by count, bytes and age (on the Effect
 *   `Clock`); mailboxes by capacity.
 * - **Coalesced writes**: events published one per turn (one per request)
 *   within the {@link Options.coalesce} window (2 ms) of the last delivery go
 *   to each subscriber together, in one write: a subscriber waits at most
 *   that window more for an event, and a busy server does not pay a socket
 *   write per subscriber per event.
 *
 * Metrics: `sluice_hub_events_published_total`,
 * `sluice_hub_publish_rejected_total{reason}`, `sluice_hub_deliveries_total`,
 * `sluice_hub_slow_consumers_total{strategy}`, `sluice_hub_subscribers`,
 * `sluice_hub_replays_total{result}` (`resumed`, or the gap reason),
 * `sluice_hub_events_replayed_total`, and the connections' own metrics
 * (drops: `sluice_events_dropped_total{reason}`).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Connection from "./Connection.ts"
import * as internal from "./internal/hub.ts"
import * as errors from "./internal/hub/errors.ts"
import type * as Log from "./Log.ts"
import type { Event, Frame, InvalidEventError } from "./SseEvent.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: typeof errors.TypeId = errors.TypeId

/**
 * A hub. Create it with {@link make}; use it with {@link publish},
 * {@link publishJson}, {@link subscribe}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hub {
  readonly [TypeId]: typeof TypeId
  /**
   * The epoch of the hub's log, in its event ids (`<epoch>-<seq>`). Fixed for
   * an in-memory log; a remote log's changes when its record was lost.
   */
  readonly epoch: string
  /** Subscribers currently registered. */
  readonly subscriberCount: () => number
  readonly stats: () => Stats
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly subscribers: number
  /** Events published since the hub was made. */
  readonly published: number
  /** Events and bytes currently retained for replay (after evicting expired ones). */
  readonly history: { readonly events: number; readonly bytes: number }
  /** Id of the last event published, if any. */
  readonly lastEventId: string | undefined
}

/**
 * History bounds. An event leaves the history as soon as any bound is
 * exceeded (oldest first).
 *
 * @since 0.1.0
 * @category models
 */
export interface HistoryOptions {
  /** Default 1000. `0` keeps no history (no replay). */
  readonly maxEvents?: number | undefined
  /** Total encoded bytes. Default 1 MiB. */
  readonly maxBytes?: number | undefined
  /** Age on the Effect `Clock`. Default 1 hour; `Infinity` for none. */
  readonly maxAge?: Duration.Input | undefined
}

/**
 * Hub settings. History limits that are not numbers, or that leave both the
 * count and the bytes unlimited, and a `maxEventBytes` below 1 are a defect
 * of `make`, naming the option (memory must stay bounded).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The record the hub is over (see `Log`): a remote one (Redis) to share a
   * hub between processes. Default: a new in-memory log with `history` and
   * `epoch`, which must then not be given.
   */
  readonly log?: Log.Log | undefined
  /** Replay history bounds of the in-memory log; `false` for none. */
  readonly history?: HistoryOptions | false | undefined
  /** Largest encoded event (wire bytes) a publish may produce. Default 64 KiB. */
  readonly maxEventBytes?: number | undefined
  /**
   * Event types a publish may use (`"message"` stands for events without a
   * type). Default: any.
   */
  readonly allowedEvents?: Iterable<string> | undefined
  /**
   * The in-memory log's epoch: it identifies this instance in the ids it
   * assigns. Default: random. Give a fixed one only if the history survives
   * the instance (in memory it does not).
   */
  readonly epoch?: string | undefined
  /**
   * After a gap signal: `live-only` (default) writes no history, only live
   * events; `replay-retained` writes the newest retained events, as many as
   * the {@link Options.replayBudget} allows (a bounded tail). Never the whole
   * history: see {@link ReplayBudget}.
   */
  readonly onGap?: "replay-retained" | "live-only" | undefined
  /** What one subscribe may replay. Default 1000 events and 256 KiB. */
  readonly replayBudget?: ReplayBudget | undefined
  /** Event type of the gap signal on the wire. Default `replay_gap`. */
  readonly gapEvent?: string | undefined
  /**
   * Write coalescing: events that reach the hub within this long of its
   * last delivery (events published one per request, in turns of their own)
   * wait for the end of it, and go to each subscriber together, in one write.
   * An event after a quiet spell goes out at once, at the end of the run
   * that published it. It bounds what a subscriber waits for an event, and
   * spares a busy server a socket write per subscriber per event. Measured
   * on the Effect `Clock` (a frozen test clock never holds an event).
   * Default 2 ms; `false` delivers every run at its end.
   */
  readonly coalesce?: Duration.Input | false | undefined
}

/**
 * What one subscribe may replay, so that a request of a few bytes cannot
 * make the server send its whole history (and a thousand of them, a
 * thousand times that). A client that missed more than this gets the gap
 * signal (reason `budget`) instead of a replay, then what `onGap` allows.
 * Values that are not numbers of at least 1 are a defect of `make`, naming
 * the option.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReplayBudget {
  /** Most events replayed to one subscriber. Default 1000. */
  readonly maxEvents?: number | undefined
  /** Most bytes replayed to one subscriber (encoded frames). Default 256 KiB. */
  readonly maxBytes?: number | undefined
}

/**
 * What a publisher gives: an SSE event without `_tag` (an `SseEvent.Event`
 * fits). Without `id` the hub assigns one.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventInput {
  readonly data: string
  readonly event?: string | undefined
  readonly id?: string | undefined
  readonly retry?: number | undefined
}

/**
 * The fields of a JSON event besides its data.
 *
 * @since 0.1.0
 * @category models
 */
export type JsonFields = Omit<EventInput, "data">

/**
 * The result of a publish.
 *
 * @since 0.1.0
 * @category models
 */
export interface Published {
  /** Position in the hub's order (1, 2, …). */
  readonly seq: number
  /** The event's id (the publisher's, or the one the hub assigned). */
  readonly id: string
  /**
   * Subscribers the event was published to: those registered when it was
   * published (a count of subscribers, not of writes: see `Connection.Stats`
   * for what reached each client). Unless a subscriber uses the `suspend` strategy, the hub
   * hands a burst of events to each subscriber at the end of the synchronous
   * run that published it (one pass per burst, not per event); a subscriber
   * that cannot take them then is handled by its strategy (counted in its
   * outcome and the metrics).
   */
  readonly subscribers: number
}

/**
 * What a subscriber does when its mailbox is full (the `strategy` words of
 * CONVENTIONS.md):
 *
 * - `disconnect` (default): it is removed at once and ends with a
 *   {@link SlowConsumer} outcome; nobody else notices. With replay, the client
 *   reconnects with its `Last-Event-ID` and loses nothing still retained.
 * - `sliding` / `dropping`: the oldest waiting or the new event is dropped
 *   for that subscriber only (counted; see {@link SubscribeOptions.dropNotice}).
 * - `suspend`: the publisher waits for room, up to
 *   {@link SubscribeOptions.suspendTimeout}; then the subscriber is
 *   disconnected with a {@link SlowConsumer} outcome. Meanwhile the hub's other
 *   publishers wait too (one order for everyone).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 * import { TestSink } from "@sluice/core/testing"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const hub = yield* Hub.make()
 *   const client = yield* TestSink.make()
 *   // An audit feed: publishers wait (up to 2 s) rather than lose an event for this client.
 *   yield* Hub.subscribe(hub, { sink: client.sink, strategy: "suspend", suspendTimeout: "2 seconds" })
 * }))
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Strategy = "disconnect" | "sliding" | "dropping" | "suspend"

/**
 * Options of {@link subscribe}: everything a connection takes except its
 * producer (the hub feeds it), plus the subscription's own.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions
  extends Omit<Connection.Options, "producer" | "strategy" | "dropNotice" | "preamble">
{
  /** What to do when this subscriber's mailbox is full. Default `disconnect`. See {@link Strategy}. */
  readonly strategy?: Strategy | undefined
  /** Under `suspend`: longest a publisher waits for this subscriber. Default 5 seconds. */
  readonly suspendTimeout?: Duration.Input | undefined
  /**
   * Under `sliding` / `dropping`: tell the client how many events it
   * missed, where the gap is. `true` sends `event: events_dropped` with data
   * `{"missed":n}`; a function builds your own event. Default: no notice.
   */
  readonly dropNotice?: boolean | ((missed: number) => Event) | undefined
  /** The client's `Last-Event-ID`: replay what it missed (see {@link Replay}). Empty means none. */
  readonly lastEventId?: string | undefined
  /**
   * Frames written first, before the gap signal, the replayed events and the
   * live ones (an opening event, a `retry:` hint). Invalid frames fail the
   * subscribe with `InvalidEventError`.
   */
  readonly preamble?: ReadonlyArray<Frame> | undefined
}

/**
 * Why a `Last-Event-ID` could not be resumed exactly:
 * - `expired`: the event is older than the retained history;
 * - `restarted`: the id was assigned by another life of the hub's log (a
 *   different epoch: a restart, a recreated topic, a lost Redis stream);
 * - `unknown`: the id matches nothing retained (or is ahead of the hub);
 * - `budget`: the client missed more than one subscribe may replay
 *   ({@link Options.replayBudget}).
 *
 * @since 0.1.0
 * @category models
 */
export type GapReason = "expired" | "restarted" | "unknown" | "budget"

/**
 * What replay found for a subscriber:
 * - `Live`: no (or an empty) `lastEventId` was given; only live events;
 * - `Resumed`: the id was found; `replayed` events followed it;
 * - `Gap`: the id could not be resumed; the subscriber got a gap signal
 *   (`replay_gap` event whose data is `{"reason":…,"lastEventId":…}` and whose
 *   id is the position the client now resumes from), then `replayed` retained
 *   events (none by default; per the hub's `onGap` and `replayBudget`).
 *
 * @since 0.1.0
 * @category models
 */
export type Replay =
  | { readonly _tag: "Live" }
  | { readonly _tag: "Resumed"; readonly lastEventId: string; readonly replayed: number }
  | {
    readonly _tag: "Gap"
    readonly lastEventId: string
    readonly reason: GapReason
    readonly replayed: number
  }

/**
 * A subscriber that could not keep up: its mailbox was full under
 * `disconnect`, or stayed full for the whole `suspend` timeout. It names the
 * subscriber, its strategy and its capacity.
 *
 * @since 0.2.0
 * @category errors
 */
export const SlowConsumerError: typeof errors.SlowConsumerError = errors.SlowConsumerError

/**
 * @since 0.2.0
 * @category errors
 */
export type SlowConsumerError = errors.SlowConsumerError

/**
 * The outcome of a subscriber the hub disconnected because it could not keep
 * up (see {@link SlowConsumerError}).
 *
 * @since 0.2.0
 * @category models
 */
export interface SlowConsumer extends Connection.Stats {
  readonly _tag: "SlowConsumer"
  readonly id: string
  readonly error: SlowConsumerError
}

/**
 * How a subscription ended: a connection's {@link Connection.Outcome}, or
 * {@link SlowConsumer}. A union on `_tag`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 *
 * const logEnd = (sub: Hub.Subscription) =>
 *   Effect.flatMap(sub.outcome, (outcome) =>
 *     outcome._tag === "SlowConsumer"
 *       ? Effect.logWarning(outcome.error.message)
 *       : Effect.logDebug(`subscriber ${outcome.id}: ${outcome._tag}`))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = Connection.Outcome | SlowConsumer

/**
 * A subscription: the connection the hub feeds, what replay found, and how it
 * ends.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription {
  readonly id: string
  /** The underlying connection, e.g. to `close("shutdown", frames)` it on server shutdown. */
  readonly connection: Connection.Connection
  readonly replay: Replay
  /** Waits for the end. */
  readonly outcome: Effect.Effect<Outcome>
}

/**
 * A publish whose encoded event would exceed `maxEventBytes`.
 *
 * @since 0.1.0
 * @category errors
 */
export const PayloadTooLargeError: typeof errors.PayloadTooLargeError = errors.PayloadTooLargeError

/**
 * @since 0.1.0
 * @category errors
 */
export type PayloadTooLargeError = errors.PayloadTooLargeError

/**
 * A publish whose event type is not in the hub's `allowedEvents`.
 *
 * @since 0.1.0
 * @category errors
 */
export const EventNotAllowedError: typeof errors.EventNotAllowedError = errors.EventNotAllowedError

/**
 * @since 0.1.0
 * @category errors
 */
export type EventNotAllowedError = errors.EventNotAllowedError

/**
 * Data the JSON helpers cannot serialize: a cycle, a `BigInt`, a `toJSON`
 * that throws, a value with no JSON form (`undefined`, a function), or a
 * value the schema rejects.
 *
 * @since 0.1.0
 * @category errors
 */
export const UnserializableDataError: typeof errors.UnserializableDataError = errors.UnserializableDataError

/**
 * @since 0.1.0
 * @category errors
 */
export type UnserializableDataError = errors.UnserializableDataError

/**
 * Why a publish was rejected, or did not complete: the event was refused
 * (too large, type not allowed, invalid), or the hub's log failed to record
 * it (`Log.LogError`: only a remote log fails; such a publish may still
 * have been recorded).
 *
 * @since 0.1.0
 * @category errors
 */
export type PublishError = PayloadTooLargeError | EventNotAllowedError | InvalidEventError | Log.LogError

/**
 * {@link publishUnsafe} refused to publish because the publish could have
 * to wait, which a synchronous call cannot: a subscriber is under the
 * `suspend` strategy (`reason` `suspend`), or the hub's log is remote
 * (`asynchronous-log`). Nothing was published. Use {@link publish}.
 *
 * @since 0.1.0
 * @category errors
 */
export const WouldBlockError: typeof errors.WouldBlockError = errors.WouldBlockError

/**
 * @since 0.1.0
 * @category errors
 */
export type WouldBlockError = errors.WouldBlockError

/**
 * Creates a hub over `options.log`, or over a new in-memory log. It owns no
 * fiber (over a remote log, a short-lived one reads a hole in the tail): it
 * lives as long as it is referenced, and its subscribers live in their own
 * scopes. Fails with `InvalidEventError` for a `gapEvent` the wire format
 * cannot carry or an `epoch` that is not lower-case letters and digits.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const hub = yield* Hub.make({ history: { maxEvents: 500, maxAge: "10 minutes" }, allowedEvents: ["price"] })
 *   yield* Hub.publishJson(hub, { symbol: "ACME", price: 42 }, { event: "price" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Hub, InvalidEventError> => internal.make(options)

/**
 * `true` for a {@link Hub}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 *
 * const program = Effect.map(Hub.make(), (hub) => [Hub.isHub(hub), Hub.isHub({ epoch: "x" })]) // [true, false]
 * ```
 *
 * @since 0.1.0
 * @category guards
 */
export const isHub = (u: unknown): u is Hub => typeof u === "object" && u !== null && TypeId in u

/**
 * Publishes an event to every subscriber.
 *
 * The event is validated and encoded once, recorded in the log and
 * offered to every mailbox. It completes without waiting for any subscriber,
 * except subscribers under `suspend` whose mailbox is full (each at most its
 * timeout). Over a remote log it waits for the append (the events published
 * in one run share one round trip) and fails with `Log.LogError` when the
 * record could not be written. The fields are read when the effect runs:
 * changing the object afterwards changes nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const hub = yield* Hub.make()
 *   const { id } = yield* Hub.publish(hub, { event: "tick", data: "1" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category publishing
 */
export const publish: {
  (event: EventInput): (self: Hub) => Effect.Effect<Published, PublishError>
  (self: Hub, event: EventInput): Effect.Effect<Published, PublishError>
} = dual(2, (self: Hub, event: EventInput) => internal.publish(self, event))

/**
 * {@link publish} as a plain function call, for code outside Effect (an
 * event emitter, a callback) and for publishers of many events in a row:
 * the same validation, single encoding, history and fan-out, with no fiber.
 * Refused with {@link WouldBlockError} (and nothing published) while the hub
 * has a subscriber under the `suspend` strategy, and always over a remote
 * log (an append is a round trip).
 *
 * @example
 * ```ts
 * import { Effect, Result } from "effect"
 * import { EventEmitter } from "node:events"
 * import { Hub } from "@sluice/core"
 *
 * const prices = new EventEmitter<{ price: [{ symbol: string; price: number }] }>()
 * const hub = Effect.runSync(Hub.make())
 * prices.on("price", (p) => {
 *   const published = Hub.publishUnsafe(hub, { event: "price", data: JSON.stringify(p) })
 *   if (Result.isFailure(published)) console.error(published.failure.message)
 * })
 * ```
 *
 * @since 0.1.0
 * @category publishing
 */
export const publishUnsafe = (
  self: Hub,
  event: EventInput
): Result.Result<Published, PublishError | WouldBlockError> => internal.publishUnsafe(self, event)

/**
 * Publishes `value` serialized once with `JSON.stringify`. Cycles, `BigInt`s
 * and values without a JSON form fail with {@link UnserializableDataError};
 * nothing is published.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const hub = yield* Hub.make()
 *   yield* Hub.publishJson(hub, { symbol: "ACME", price: 42 }, { event: "price" })
 *   const cyclic: { self?: unknown } = {}
 *   cyclic.self = cyclic
 *   // fails with UnserializableDataError; nothing is published
 *   return yield* Effect.flip(Hub.publishJson(hub, cyclic))
 * })
 * ```
 *
 * @since 0.1.0
 * @category publishing
 */
export const publishJson: {
  (value: unknown, fields?: JsonFields): (self: Hub) => Effect.Effect<Published, PublishError | UnserializableDataError>
  (self: Hub, value: unknown, fields?: JsonFields): Effect.Effect<Published, PublishError | UnserializableDataError>
} = dual(
  (args) => isHub(args[0]),
  (self: Hub, value: unknown, fields?: JsonFields) => internal.publishJson(self, value, fields)
)

/**
 * Publishes `value` encoded with `schema` and serialized once as JSON. A
 * value the schema rejects fails with {@link UnserializableDataError}.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Hub } from "@sluice/core"
 *
 * const Price = Schema.Struct({ symbol: Schema.String, at: Schema.Date })
 * const program = Effect.gen(function*() {
 *   const hub = yield* Hub.make()
 *   yield* Hub.publishSchema(hub, Price, { symbol: "ACME", at: new Date(0) }, { event: "price" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category publishing
 */
export const publishSchema: {
  <S extends Schema.Top>(
    schema: S,
    value: S["Type"],
    fields?: JsonFields
  ): (self: Hub) => Effect.Effect<Published, PublishError | UnserializableDataError, S["EncodingServices"]>
  <S extends Schema.Top>(
    self: Hub,
    schema: S,
    value: S["Type"],
    fields?: JsonFields
  ): Effect.Effect<Published, PublishError | UnserializableDataError, S["EncodingServices"]>
} = dual(
  (args) => isHub(args[0]),
  <S extends Schema.Top>(self: Hub, schema: S, value: S["Type"], fields?: JsonFields) =>
    internal.publishSchema(self, schema, value, fields)
)

/**
 * Why a subscribe failed: an invalid preamble frame, or the log could not
 * be read for the replay (only a remote log fails).
 *
 * @since 0.2.0
 * @category errors
 */
export type SubscribeError = InvalidEventError | Log.LogError

/**
 * Subscribes in the current scope: closing the scope unsubscribes (and ends
 * the connection). Returns once the subscriber is registered: every event
 * published after that reaches it (per its strategy).
 *
 * The subscriber's stream is: `preamble`, then the gap signal (if any), then
 * the replayed events, then live events.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Hub, SseEvent } from "@sluice/core"
 * import { TestSink } from "@sluice/core/testing"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const hub = yield* Hub.make()
 *   const client = yield* TestSink.make()
 *   const sub = yield* Hub.subscribe(hub, {
 *     sink: client.sink,
 *     strategy: "sliding",
 *     lastEventId: undefined,
 *     preamble: [SseEvent.retry(2000)]
 *   })
 *   yield* Hub.publish(hub, { data: "hello" })
 *   yield* sub.connection.close("bye")
 *   return yield* sub.outcome
 * }))
 * ```
 *
 * @since 0.1.0
 * @category subscribing
 */
export const subscribe: {
  (options: SubscribeOptions): (self: Hub) => Effect.Effect<Subscription, SubscribeError, Scope.Scope>
  (self: Hub, options: SubscribeOptions): Effect.Effect<Subscription, SubscribeError, Scope.Scope>
} = dual(2, (self: Hub, options: SubscribeOptions) => internal.subscribe(self, options))
