/**
 * Resumable streams: producers that belong to the server, not to a client.
 * Start one by id; any number of clients attach to it, detach, and resume
 * from their `Last-Event-ID`, on this node or (with a shared coordinator
 * and log store) on any other; stop it from anywhere. An LLM answer keeps
 * generating while the user reloads the page, switches network or opens it
 * on a second device, and is paid for once.
 *
 * ```text
 * start(id, producer) ─▶ producer ─send─▶ record (a Log: events, then one end marker)
 *                                              │ read after the client's position
 * attach(id, lastEventId) ─▶ connection ◀──────┘ then live, then the end's frames and close
 * stop(id) ─▶ producer interrupted (finalizers once) ─▶ end marker ─▶ every client gets the end
 * ```
 *
 * What it guarantees:
 * - **Idempotent start**: a second `start` of an id that runs, or ended and
 *   is retained, starts nothing and says so (`AlreadyStarted`), on any node
 *   and under concurrent starts.
 * - **No gap, no duplicate**: `attach` delivers everything after the
 *   client's `lastEventId`, then live events, then the end, whatever the
 *   timing of the attach relative to the producer's events and its end.
 *   Without an id it starts from the beginning (a second tab shows the whole
 *   answer); after the end, within the retention time, the whole remaining
 *   record and the end come at once. An id the record cannot resume gets a
 *   `replay_gap` event (with an empty id) and the record from its beginning.
 * - **Every stream ends with a reason**: `completed`, `failed` (a safe
 *   message, never the cause), `stopped` (by `stop`, or the detach policy),
 *   `expired` (its maximum lifetime), `producer_lost` (the producer's node
 *   died, lost its lease, or shut down). Clients attached on other nodes
 *   learn of a dead owner within the lease time; nobody waits for ever.
 * - **Stop is not disconnect**: a client going away never stops the
 *   producer, unless the stream was started with a `detachGrace` (then the
 *   producer is stopped once no client has been attached anywhere for that
 *   long). `stop` interrupts the producer from any node; its finalizers run
 *   once, before the attached clients get the end.
 * - **Bounded**: concurrent streams per node (`StreamLimitError`), events
 *   and bytes per stream (beyond them the stream ends as `failed`, naming
 *   the bound), lifetime, retention after the end (then the record is
 *   deleted), retained records per node.
 *
 * Records are in-memory logs of this node unless a `Log.Store` is in context
 * (then `store.open` per start, for example Redis from `@sluice/redis`);
 * the cross-node facts live in the `ResumableCoordinator.Coordinator` in
 * context, or a private in-memory one.
 *
 * Metrics: `sluice_resumable_started_total`,
 * `sluice_resumable_starts_existing_total`,
 * `sluice_resumable_starts_refused_total{reason}`, `sluice_resumable_active`,
 * `sluice_resumable_attached`, `sluice_resumable_ended_total{reason}`, and
 * the attached connections' own metrics.
 *
 * @since 0.2.0
 */
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Connection from "./Connection.ts"
import * as internal from "./internal/resumable/collection.ts"
import * as model from "./internal/resumable/model.ts"
import type * as Log from "./Log.ts"
import type * as ResumableCoordinator from "./ResumableCoordinator.ts"
import type { Event, Frame, InvalidEventError } from "./SseEvent.ts"

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: typeof model.TypeId = model.TypeId

/**
 * A collection of resumable streams on this node. Create it with
 * {@link make}; use it with {@link start}, {@link attach}, {@link stop},
 * {@link status}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Resumable {
  readonly [TypeId]: typeof TypeId
  /** This node's name at the coordinator. */
  readonly node: string
  readonly stats: () => Stats
}

/**
 * What a collection holds and has done on this node.
 *
 * @since 0.2.0
 * @category models
 */
export interface Stats {
  /** Producers running on this node. */
  readonly running: number
  /** Ended streams whose record this node keeps (retention). */
  readonly retained: number
  /** Clients attached through this node (to streams of any node). */
  readonly attached: number
  /** Streams started on this node. */
  readonly started: number
  /** Streams this node ended, by kind of end. */
  readonly ended: Readonly<Record<EndKind, number>>
}

/**
 * How a stream ended (see `ResumableCoordinator.End`).
 *
 * @since 0.2.0
 * @category models
 */
export type End = ResumableCoordinator.End

/**
 * The five kinds of end, as the metrics name them.
 *
 * @since 0.2.0
 * @category models
 */
export type EndKind = model.EndKind

/**
 * The reason a client reads in the close event for an end: `completed`,
 * `failed`, the stop's reason (`stopped` unless another was given),
 * `expired` or `producer_lost`.
 *
 * @example
 * ```ts
 * import { Resumable } from "@sluice/core"
 *
 * Resumable.reasonOf({ _tag: "ProducerLost" }) // "producer_lost"
 * Resumable.reasonOf({ _tag: "Stopped", reason: "stopped", detached: true }) // "stopped"
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export const reasonOf: (end: End) => string = model.reasonOf

/**
 * What a function producer is given: the sending end of the stream's record.
 * Sends do not wait for clients (the record is the buffer); an invalid
 * event fails with `InvalidEventError` (an event that carries its own `id`
 * is invalid: the record assigns ids). Beyond the stream's bounds the
 * producer is interrupted and the stream ends as `failed`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Sender {
  readonly send: (event: Event) => Effect.Effect<void, InvalidEventError>
  /** Records events in order; stops at the first invalid one (those before it are recorded). */
  readonly sendAll: (events: Iterable<Event>) => Effect.Effect<void, InvalidEventError>
}

/**
 * What produces a stream's events: a `Stream` of events, or a function given
 * the {@link Sender}. It runs in a scope of the collection, with the
 * services of the `start` caller; its own finalizers (`Effect.addFinalizer`)
 * run once, when it ends.
 *
 * @since 0.2.0
 * @category models
 */
export type Producer<E, R> = Stream.Stream<Event, E, R> | ((sender: Sender) => Effect.Effect<void, E, R>)

/**
 * Settings of one stream. Values that cannot work (a count below 1, a
 * duration that is not one) are a defect of `start` (or of `make`, for
 * `defaults`), naming the option.
 *
 * @since 0.2.0
 * @category models
 */
export interface StartOptions<E = unknown> {
  /** Most events the stream may record. Default 100 000. */
  readonly maxEvents?: number | undefined
  /** Most bytes of event fields (type and data, UTF-8) the stream may record. Default 4 MiB. */
  readonly maxBytes?: number | undefined
  /** Longest the producer may run; then the stream ends as `expired`. `false`: no limit. Default 1 hour. */
  readonly maxLifetime?: Duration.Input | false | undefined
  /** How long the record is kept after the end (attaches then get it whole). Default 5 minutes. */
  readonly retention?: Duration.Input | undefined
  /**
   * The detach policy: stop the producer once no client has been attached
   * (on any node) for this long; the end is `stopped` with `detached: true`.
   * The start counts as a client leaving. Default `false`: clients never
   * stop the producer.
   */
  readonly detachGrace?: Duration.Input | false | undefined
  /**
   * The message recorded when the producer fails, shown to clients. Default
   * `"The event stream failed"`. It must not reveal the cause; if it throws,
   * the default is used.
   */
  readonly failureMessage?: ((cause: Cause.Cause<E>) => string) | undefined
}

/**
 * Settings of a collection. Values that cannot work are a defect of
 * {@link make}, naming the option.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Most producers running on this node at once; beyond, `start` fails with {@link StreamLimitError}. Default 1 000. */
  readonly maxStreams?: number | undefined
  /** Most ended records this node keeps; beyond, the oldest is deleted before its retention ends. Default 1 000. */
  readonly maxRetained?: number | undefined
  /**
   * The lease: the longest clients on other nodes wait to learn that the
   * producer's node died (`producer_lost`). The owner renews every lease/4;
   * a node that cannot renew for lease/2 gives its producers up. Default 10 seconds.
   */
  readonly lease?: Duration.Input | undefined
  /** This node's name at the coordinator. Default: random. */
  readonly node?: string | undefined
  /** Settings every `start` begins from. */
  readonly defaults?: StartOptions | undefined
}

/**
 * What a stream is: running (here, or on another node), or ended and
 * retained.
 *
 * @since 0.2.0
 * @category models
 */
export type Status =
  | { readonly _tag: "Running"; readonly id: string; readonly local: boolean }
  | { readonly _tag: "Ended"; readonly id: string; readonly end: End }

/**
 * The result of {@link start}: this call started the producer, or the id
 * existed already (running, or ended and retained) and nothing was started.
 *
 * @since 0.2.0
 * @category models
 */
export type Started =
  | { readonly _tag: "Started"; readonly id: string }
  | { readonly _tag: "AlreadyStarted"; readonly id: string; readonly status: Status }

/**
 * The result of {@link stop}:
 * - `Stopped`: this stop ended the stream (`end` is its `Stopped` end);
 * - `AlreadyEnded`: it had ended, or ended otherwise before the stop took effect;
 * - `Requested`: the stop was passed to the owner on another node, which
 *   did not confirm within two leases (it will end the stream, or its lease
 *   will run out).
 *
 * @since 0.2.0
 * @category models
 */
export type Stopped =
  | { readonly _tag: "Stopped"; readonly id: string; readonly end: End }
  | { readonly _tag: "AlreadyEnded"; readonly id: string; readonly end: End }
  | { readonly _tag: "Requested"; readonly id: string }

/**
 * Where an attached client starts:
 * - `FromStart`: no `lastEventId`: the whole record;
 * - `Resumed`: after `lastEventId`;
 * - `Gap`: the id cannot be resumed (see `Log.NotFoundReason`); the client
 *   got a `replay_gap` event with an empty id, then the whole record.
 *
 * @since 0.2.0
 * @category models
 */
export type Start =
  | { readonly _tag: "FromStart" }
  | { readonly _tag: "Resumed"; readonly lastEventId: string }
  | { readonly _tag: "Gap"; readonly lastEventId: string; readonly reason: Log.NotFoundReason }

/**
 * Options of {@link attach}: the connection's (sink, capacity, heartbeat,
 * write timeout, id), plus where to start and how to render the end.
 *
 * @since 0.2.0
 * @category models
 */
export interface AttachOptions
  extends Omit<Connection.Options, "producer" | "preamble" | "terminal" | "overflow" | "dropNotice">
{
  /** The client's `Last-Event-ID`; empty or absent: from the beginning. */
  readonly lastEventId?: string | undefined
  /** Frames written first (an opening event, a `retry:` hint). Invalid frames fail the attach. */
  readonly preamble?: ReadonlyArray<Frame> | undefined
  /**
   * Frames for the end, written after the last event (a `done` event), and
   * for a `Failed` end after the `error` event with `{"message": …}` that
   * every failed stream gets. Default: none.
   */
  readonly end?: ((end: End) => ReadonlyArray<Frame>) | undefined
  /**
   * The frames that close the connection with a reason, after the end's own
   * (an HTTP route's `connection_close`). The reason is {@link reasonOf} the
   * end, or `unavailable` when the record could not be read (the client may
   * come back). Default: none.
   */
  readonly closeFrames?: ((reason: string) => ReadonlyArray<Frame>) | undefined
  /** Event type of the gap signal. Default `replay_gap`. */
  readonly gapEvent?: string | undefined
}

/**
 * A client attached to a stream.
 *
 * @since 0.2.0
 * @category models
 */
export interface Attachment {
  /** The stream's id. */
  readonly id: string
  readonly connection: Connection.Connection
  readonly start: Start
  /** Waits for the connection's end. */
  readonly outcome: Effect.Effect<Connection.Outcome>
}

/**
 * The stream is unknown here: never started, or deleted after its retention.
 *
 * @since 0.2.0
 * @category errors
 */
export const UnknownStreamError: typeof model.UnknownStreamError = model.UnknownStreamError

/**
 * @since 0.2.0
 * @category errors
 */
export type UnknownStreamError = model.UnknownStreamError

/**
 * This node runs `maxStreams` producers already.
 *
 * @since 0.2.0
 * @category errors
 */
export const StreamLimitError: typeof model.StreamLimitError = model.StreamLimitError

/**
 * @since 0.2.0
 * @category errors
 */
export type StreamLimitError = model.StreamLimitError

/**
 * An id that cannot name a stream: empty, over 256 characters, with control
 * characters or lone surrogates.
 *
 * @since 0.2.0
 * @category errors
 */
export const InvalidStreamIdError: typeof model.InvalidStreamIdError = model.InvalidStreamIdError

/**
 * @since 0.2.0
 * @category errors
 */
export type InvalidStreamIdError = model.InvalidStreamIdError

/**
 * A stop reason that is not 1 to 64 snake_case characters.
 *
 * @since 0.2.0
 * @category errors
 */
export const InvalidStopReasonError: typeof model.InvalidStopReasonError = model.InvalidStopReasonError

/**
 * @since 0.2.0
 * @category errors
 */
export type InvalidStopReasonError = model.InvalidStopReasonError

/**
 * Why a start failed: the node is full, the id is invalid, or the
 * coordinator or the record's store did not answer (also while the
 * collection shuts down).
 *
 * @since 0.2.0
 * @category errors
 */
export type StartError = StreamLimitError | InvalidStreamIdError | ResumableCoordinator.CoordinatorError | Log.LogError

/**
 * Why an attach failed.
 *
 * @since 0.2.0
 * @category errors
 */
export type AttachError =
  | UnknownStreamError
  | InvalidStreamIdError
  | InvalidEventError
  | ResumableCoordinator.CoordinatorError
  | Log.LogError

/**
 * Why a stop or a status failed.
 *
 * @since 0.2.0
 * @category errors
 */
export type StopError =
  | UnknownStreamError
  | InvalidStreamIdError
  | InvalidStopReasonError
  | ResumableCoordinator.CoordinatorError

/**
 * Makes a collection in the current scope. Closing the scope ends every
 * producer running here with `producer_lost` (their finalizers run, the end
 * is recorded) and releases the records.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Resumable } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const answers = yield* Resumable.make({
 *     maxStreams: 200,
 *     defaults: { maxLifetime: "10 minutes", retention: "15 minutes" }
 *   })
 *   return answers.stats()
 * }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Resumable, never, Scope.Scope> = internal.make

/**
 * `true` for a {@link Resumable}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Resumable } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.map(Resumable.make(), Resumable.isResumable)) // true
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isResumable = (u: unknown): u is Resumable => typeof u === "object" && u !== null && TypeId in u

/**
 * Starts the stream `id`, once. The producer runs in a scope of the
 * collection: the caller may go away. Returns `AlreadyStarted` (starting
 * nothing) when the id runs or ended and is retained, here or on another
 * node: a retried request is harmless.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Resumable, SseEvent } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const answers = yield* Resumable.make()
 *   const tokens = Stream.make("Hello", ", ", "world").pipe(
 *     Stream.map((text) => SseEvent.make({ event: "token", data: JSON.stringify({ text }) }))
 *   )
 *   const first = yield* Resumable.start(answers, "answer-1", tokens)
 *   const again = yield* Resumable.start(answers, "answer-1", tokens)
 *   return [first._tag, again._tag] // ["Started", "AlreadyStarted"]
 * }))
 * ```
 *
 * @since 0.2.0
 * @category operations
 */
export const start: {
  <E, R>(
    id: string,
    producer: Producer<E, R>,
    options?: StartOptions<E>
  ): (self: Resumable) => Effect.Effect<Started, StartError, R>
  <E, R>(
    self: Resumable,
    id: string,
    producer: Producer<E, R>,
    options?: StartOptions<E>
  ): Effect.Effect<Started, StartError, R>
} = dual(
  (args) => isResumable(args[0]),
  <E, R>(self: Resumable, id: string, producer: Producer<E, R>, options?: StartOptions<E>) =>
    internal.start(self, id, producer, options)
)

/**
 * Attaches a client to the stream `id` in the current scope: a connection
 * that writes `preamble`, then (with a `lastEventId` the record cannot
 * resume) the gap signal, then every recorded event after the client's
 * position, live events as they come, and at the end the end's frames and
 * `closeFrames(reason)`. Closing the scope detaches the client; the
 * producer goes on (unless the detach policy says otherwise).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Resumable, SseEvent } from "@sluice/core"
 * import { TestSink } from "@sluice/core/testing"
 *
 * const program = (answers: Resumable.Resumable, lastEventId: string | undefined) =>
 *   Effect.scoped(Effect.gen(function*() {
 *     const client = yield* TestSink.make()
 *     const attached = yield* Resumable.attach(answers, "answer-1", {
 *       sink: client.sink,
 *       lastEventId,
 *       closeFrames: (reason) => [SseEvent.make({ event: "connection_close", data: JSON.stringify({ reason }) })]
 *     })
 *     return yield* attached.outcome
 *   }))
 * ```
 *
 * @since 0.2.0
 * @category operations
 */
export const attach: {
  (id: string, options: AttachOptions): (self: Resumable) => Effect.Effect<Attachment, AttachError, Scope.Scope>
  (self: Resumable, id: string, options: AttachOptions): Effect.Effect<Attachment, AttachError, Scope.Scope>
} = dual(3, (self: Resumable, id: string, options: AttachOptions) => internal.attach(self, id, options))

/**
 * Stops the stream `id` from any node: its producer is interrupted, its
 * finalizers run once, the end (`Stopped` with `reason`, default
 * `stopped`) is recorded and every attached client gets it. Waits for all
 * that when the producer runs here, or up to two leases when it runs on
 * another node. A stream that has ended already is left as it is
 * (`AlreadyEnded`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Resumable } from "@sluice/core"
 *
 * const cancel = (answers: Resumable.Resumable, id: string) =>
 *   Resumable.stop(answers, id).pipe(
 *     Effect.map((result) => result._tag), // "Stopped" | "AlreadyEnded" | "Requested"
 *     Effect.catchTag("UnknownStreamError", () => Effect.succeed("NotFound" as const))
 *   )
 * ```
 *
 * @since 0.2.0
 * @category operations
 */
export const stop: {
  (id: string, reason?: string): (self: Resumable) => Effect.Effect<Stopped, StopError>
  (self: Resumable, id: string, reason?: string): Effect.Effect<Stopped, StopError>
} = dual(
  (args) => isResumable(args[0]),
  (self: Resumable, id: string, reason?: string) => internal.stop(self, id, reason ?? "stopped")
)

/**
 * Whether the stream `id` runs (here or elsewhere) or has ended (and how).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Resumable } from "@sluice/core"
 *
 * const describe = (answers: Resumable.Resumable, id: string) =>
 *   Effect.map(Resumable.status(answers, id), (status) =>
 *     status._tag === "Running"
 *       ? `running ${status.local ? "here" : "on another node"}`
 *       : `ended: ${Resumable.reasonOf(status.end)}`)
 * ```
 *
 * @since 0.2.0
 * @category operations
 */
export const status: {
  (id: string): (self: Resumable) => Effect.Effect<Status, StopError>
  (self: Resumable, id: string): Effect.Effect<Status, StopError>
} = dual(2, (self: Resumable, id: string) => internal.status(self, id))
