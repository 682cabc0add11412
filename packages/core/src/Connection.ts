/**
 * The connection actor: the one mechanism every sluice stream runs on.
 *
 * A connection is a bounded mailbox of encoded frames, a writer that empties
 * it into the sink, and deadlines (heartbeat, write timeout) on the clock's
 * shared ticker, in one `Scope`; with a producer, a producer fiber fills the
 * mailbox. A hub or a keyed registry feeds it through its handle instead.
 *
 * ```text
 * producer ─send─▶ ┐
 * handle ───offer─▶ ┴▶ [ mailbox: encoded frames, bounded ] ─▶ writer ─▶ sink
 *                         ▲ heartbeat when idle             ▲ write deadline
 * ```
 *
 * What it guarantees:
 * - **Backpressure**: when the mailbox is full the producer suspends; nothing
 *   grows without bound and nothing spins.
 * - **Coalescing**: the writer takes everything waiting and writes it as one
 *   chunk, so a backlog costs one write, not one per event. When the sink
 *   can take a chunk at once (`Sink.tryWrite`), it is written at once, in the
 *   caller's stack; the writer's fiber then runs only while a write must
 *   wait (an idle connection on such a sink holds no fiber).
 * - **Client gone** (the sink fails, or a write exceeds the write timeout): the
 *   producer is interrupted, whatever is still buffered is discarded and
 *   counted, finalizers run once, and no fiber is left. A producer blocked on a
 *   full mailbox is released (its offer is refused), never left hanging.
 * - **Producer completes**: everything it offered is written, then the
 *   `terminal.completed` frames, then the stream ends.
 * - **Producer fails**: everything it offered is written, then the
 *   `terminal.failed` frames (by default one `error` event with a safe
 *   message), then the stream ends. The failure is read from the producer's
 *   exit after it ended.
 * - **Interrupted from outside** (scope closed, server shutdown): all fibers
 *   end and finalizers run once.
 * - **Heartbeats**: a comment frame after `heartbeat` without any write; every
 *   write resets the timer; none after the end.
 * - **When full**: by default a full mailbox suspends the producer; a
 *   connection can instead drop the oldest or the newest frame
 *   ({@link Strategy}), counting drops and optionally telling the client where
 *   the gap is ({@link Options.dropNotice}).
 * - **Preamble**: frames written before anything in the mailbox (an opening
 *   event), outside the mailbox's capacity.
 * - The result is an {@link Outcome} value saying why it ended and how many
 *   events were delivered and discarded; the same figures feed Effect
 *   `Metric`s (`sluice_connections_open`, `sluice_events_delivered_total`, …).
 *
 * Mailbox entries are encoded bytes, so a hub can encode an event once and
 * offer the same buffer to many connections (see {@link Connection.offerUnsafe}),
 * and a feeder can hand the same frames to many connections as one
 * {@link Burst} that their mailboxes share instead of copying
 * ({@link Connection.offerBurstUnsafe}).
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/connection.ts"
import type { Sink, WriteError } from "./Sink.ts"
import type { Frame, InvalidEventError } from "./SseEvent.ts"

/**
 * What a function producer receives: the sending end of the connection
 * (its mailbox stays inside the connection).
 *
 * Every method suspends while the mailbox is full (backpressure, under the
 * default `suspend` strategy). When the connection has ended (client gone,
 * closed), the calling fiber is interrupted, which ends a producer loop
 * without any check in user code.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Connection, SseEvent } from "@sluice/core"
 *
 * // A clock: one event a second until the client goes (the loop needs no check).
 * const clock = (sender: Connection.Sender) =>
 *   Effect.repeat(
 *     Effect.suspend(() => sender.send(SseEvent.make({ event: "time", data: new Date().toISOString() }))),
 *     Schedule.spaced("1 second")
 *   )
 * const outcome = Connection.run({ producer: clock, sink: () => Effect.void })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Sender {
  /** Encodes a frame and offers it. Fails with `InvalidEventError` for an invalid frame (nothing is offered). */
  readonly send: (frame: Frame) => Effect.Effect<void, InvalidEventError>
  /** Encodes frames and offers them in order; stops at the first invalid frame (the valid ones before it are offered). */
  readonly sendAll: (frames: Iterable<Frame>) => Effect.Effect<void, InvalidEventError>
  /** Offers an already encoded frame (for example from `SseEncoder.encode`). */
  readonly sendBytes: (bytes: Uint8Array) => Effect.Effect<void>
}

/**
 * What produces a connection's events:
 * - a `Stream` of frames, run to completion (its failure is the connection's failure);
 * - or a function given the {@link Sender}, for producers that push.
 *
 * Omit it when something else feeds the connection through its handle (a hub).
 *
 * @since 0.1.0
 * @category models
 */
export type Producer<E, R> = Stream.Stream<Frame, E, R> | ((sender: Sender) => Effect.Effect<void, E, R>)

/**
 * How the end of a stream is rendered as final frames, written after every
 * event already in the mailbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface Terminal<E> {
  /** After the producer completed. Default: nothing. */
  readonly completed?: (() => ReadonlyArray<Frame>) | undefined
  /**
   * After the producer failed. Default: one `error` event whose data is
   * `{"message":"The event stream failed"}`: the cause stays on the server
   * (it is in the {@link Outcome}); clients never see internal details.
   */
  readonly failed?: ((cause: Cause.Cause<E>) => ReadonlyArray<Frame>) | undefined
}

/**
 * What a connection does with an offer when its mailbox is full (the
 * `strategy` words of CONVENTIONS.md, as Effect's `Queue` uses them).
 *
 * - `suspend` (default): `offer` waits for room; `offerUnsafe` returns `false`
 *   and leaves the decision to the caller (a hub disconnects or waits).
 * - `sliding`: the oldest frame waiting in the mailbox is dropped to make
 *   room; the new one is accepted. Offers never wait.
 * - `dropping`: the new frame is dropped; what is waiting is kept. Offers
 *   never wait.
 *
 * Drops are counted (`dropped` in {@link Stats} and {@link Outcome}, the
 * `sluice_events_dropped_total{reason}` metric) and can be announced to the
 * client with {@link Options.dropNotice}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection } from "@sluice/core"
 *
 * // A live view: when the client falls behind, only the newest frames matter.
 * const view = Connection.make({ sink: () => Effect.void, capacity: 16, strategy: "sliding" })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type Strategy = "suspend" | "sliding" | "dropping"

/**
 * What a connection runs and how. A capacity that is not a finite number of
 * at least 1 is a defect of `make`/`run`, naming the option.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never, R = never> {
  /** The producer. Optional when the connection is fed through its handle. */
  readonly producer?: Producer<E, R> | undefined
  /** Where bytes go. */
  readonly sink: Sink
  /** Mailbox capacity in frames. Default 64. */
  readonly capacity?: number | undefined
  /** Idle time after which a heartbeat comment is sent; `false` for none. Default 15 seconds. */
  readonly heartbeat?: Duration.Input | false | undefined
  /**
   * Text of the heartbeat comment (`: text`). Default: empty (`:`). Line
   * breaks make more comment lines (never an event field); lone surrogates
   * become U+FFFD.
   */
  readonly heartbeatText?: string | undefined
  /** Longest a single write may take before the client counts as gone; `false` for no limit. Default 30 seconds. */
  readonly writeTimeout?: Duration.Input | false | undefined
  /** Final frames for the terminal outcomes. */
  readonly terminal?: Terminal<E> | undefined
  /** An id for logs, metrics and the outcome. Default: a process-unique `c<n>`. */
  readonly id?: string | undefined
  /** What to do with an offer when the mailbox is full. Default `suspend`. See {@link Strategy}. */
  readonly strategy?: Strategy | undefined
  /**
   * With `sliding` or `dropping` (see {@link Strategy}): the frame that tells the client how many
   * events it missed. It is written where the gap is (before the next frame
   * after the dropped ones), as part of the writer's next batch, so it never
   * needs room in the mailbox. Default: no notice (drops are only counted).
   */
  readonly dropNotice?: ((missed: number) => Frame) | undefined
  /**
   * Frames written first, before anything offered to the mailbox (an opening
   * event, a `retry:` hint): the same `preamble` as the hub's, the
   * registry's and the routes', which pass theirs through here. A frame may
   * also be given already encoded (`SseEncoder.encode`, a log's entry), as
   * the mailbox takes them. They do not use mailbox capacity; they are
   * written in batches of at most `capacity` frames. An invalid frame is a
   * defect of `make`, naming its position.
   */
  readonly preamble?: ReadonlyArray<Frame | Uint8Array> | undefined
}

/**
 * How a connection ended, as a value: a union on `_tag`, each with the
 * connection's id and final {@link Stats}.
 *
 * - `Completed`: the producer finished and everything was written;
 * - `Failed`: the producer failed (buffered events and the failure frames were written);
 * - `ClientGone`: a write failed or timed out, or the transport said the client left;
 * - `Interrupted`: the connection's scope was closed from outside;
 * - `Closed`: ended through the handle ({@link Connection.close} /
 *   {@link Connection.kill}), with the caller's `reason`.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Connection, SseEvent } from "@sluice/core"
 *
 * const describe = (outcome: Connection.Outcome): string => {
 *   switch (outcome._tag) {
 *     case "ClientGone":
 *       return `client left after ${outcome.delivered} events (${outcome.error.reason})`
 *     case "Closed":
 *       return `closed: ${outcome.reason}`
 *     default:
 *       return outcome._tag
 *   }
 * }
 * const program = Effect.map(
 *   Connection.run({ producer: Stream.make(SseEvent.data("hi")), sink: () => Effect.void }),
 *   describe
 * )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = Completed | Failed | ClientGone | Interrupted | Closed

/**
 * The producer finished and everything it produced was written.
 *
 * @since 0.2.0
 * @category models
 */
export interface Completed extends Stats {
  readonly _tag: "Completed"
  readonly id: string
}

/**
 * The producer failed: what it had produced was written, then the
 * `terminal.failed` frames. The cause stays on the server.
 *
 * @since 0.2.0
 * @category models
 */
export interface Failed extends Stats {
  readonly _tag: "Failed"
  readonly id: string
  readonly cause: Cause.Cause<unknown>
}

/**
 * The client is gone: a write failed or timed out, or the transport said so
 * ({@link Connection.lost}).
 *
 * @since 0.2.0
 * @category models
 */
export interface ClientGone extends Stats {
  readonly _tag: "ClientGone"
  readonly id: string
  readonly error: WriteError
}

/**
 * The connection's scope was closed from outside (server shutdown, the
 * calling fiber interrupted).
 *
 * @since 0.2.0
 * @category models
 */
export interface Interrupted extends Stats {
  readonly _tag: "Interrupted"
  readonly id: string
}

/**
 * Ended through the handle ({@link Connection.close}, {@link Connection.kill})
 * with the caller's `reason` (a wire close reason such as `replaced`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Closed extends Stats {
  readonly _tag: "Closed"
  readonly id: string
  readonly reason: string
}

/**
 * Counters of a live connection (and, with its id, of an ended one).
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Events written to the sink (heartbeats excluded; preamble, drop notices and terminal frames included). */
  readonly delivered: number
  /** Events accepted into the mailbox (or the preamble) but never written because the connection ended first. */
  readonly discarded: number
  /** Events dropped under `sliding` or `dropping` (see {@link Strategy}) (refused, or pushed out by newer ones). */
  readonly dropped: number
  readonly heartbeats: number
  readonly writes: number
  readonly bytes: number
}

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: typeof internal.TypeId = internal.TypeId

declare const BurstTypeId: unique symbol

/**
 * Encoded frames that never change again, to be offered to many connections
 * with {@link Connection.offerBurstUnsafe}: their mailboxes share the array
 * rather than copy it. Made by {@link makeBurst}.
 *
 * @since 0.2.0
 * @category models
 */
export type Burst = ReadonlyArray<Uint8Array> & { readonly [BurstTypeId]: true }

/**
 * Makes a {@link Burst} of `frames` (encoded SSE frames, as
 * `SseEncoder.encodeUnsafe` makes them): a frozen copy of the array, so that
 * nothing can change it once connections share it. The bytes themselves are
 * not copied: do not change them afterwards (a `Uint8Array` cannot be
 * frozen). Make one burst per hand-out and offer it to every connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection, SseEncoder, SseEvent } from "@sluice/core"
 *
 * // One burst, shared by the mailboxes of every connection it is offered to.
 * const fanOut = (connections: ReadonlyArray<Connection.Connection>) => {
 *   const burst = Connection.makeBurst([
 *     SseEncoder.encodeUnsafe(SseEvent.make({ event: "tick", data: "1" })),
 *     SseEncoder.encodeUnsafe(SseEvent.make({ event: "tick", data: "2" }))
 *   ])
 *   for (const connection of connections) {
 *     // A refusal from `stop` on is handled by the feeder (its slow-client policy).
 *     const stop = connection.offerBurstUnsafe(burst, 0)
 *     if (stop < burst.length) Effect.runFork(connection.kill("slow_consumer"))
 *   }
 * }
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeBurst = (frames: ReadonlyArray<Uint8Array>): Burst => Object.freeze(frames.slice()) as Burst

/**
 * A running connection: the handle that feeds it, ends it and observes its
 * end. Made by {@link make}, and by the hubs, registries and resumable
 * streams that feed connections.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly [TypeId]: typeof TypeId
  readonly id: string
  readonly capacity: number
  readonly strategy: Strategy
  /**
   * Offers encoded bytes without waiting: `false` when the bytes were not
   * accepted (the mailbox is full under `suspend`, the bytes were dropped under
   * `dropping`, or the connection is closing or has ended). Under `sliding` a
   * full mailbox drops its oldest frame and accepts the bytes.
   * This is how a hub feeds many connections from one fiber without ever
   * blocking on one of them.
   */
  readonly offerUnsafe: (bytes: Uint8Array) => boolean
  /**
   * {@link Connection.offerUnsafe} for `frames[from..]`, in order, with one
   * capacity check when they all fit (how a feeder hands a burst to each
   * connection). A writer waiting for frames is served at once, in the
   * caller's stack (not through the scheduler): call it outside a fiber's
   * run, at the end of a burst. More frames than the mailbox holds are
   * still taken whole when nothing waits and the sink takes them at once
   * (`Sink.tryWrite`): capacity bounds what waits. Returns the index of the
   * first frame not accepted (`frames.length` when all were). The frames are
   * copied: the caller may reuse its array.
   */
  readonly offerManyUnsafe: (frames: ReadonlyArray<Uint8Array>, from: number) => number
  /**
   * {@link Connection.offerManyUnsafe} for a {@link Burst} (see
   * {@link makeBurst}): offered from its start to a mailbox where nothing
   * waits, the burst itself becomes the waiting frames, shared with every
   * other connection it is offered to, not copied (a mailbox copies it only
   * before changing it); and the writers of the connections that take it
   * whole concatenate its frames once between them. How a feeder fans the
   * same frames out to many connections. Returns the index of the first
   * frame not accepted, as `offerManyUnsafe` does.
   */
  readonly offerBurstUnsafe: (burst: Burst, from: number) => number
  /**
   * Offers encoded bytes. Under `suspend` it waits while the mailbox is full;
   * under `sliding` and `dropping` it never waits (a drop counts as handled).
   * `false` once the connection is closing or has ended.
   */
  readonly offer: (bytes: Uint8Array) => Effect.Effect<boolean>
  /** `true` while offers can be accepted: `false` once closing (after {@link Connection.close}) or ended. */
  readonly accepting: () => boolean
  /**
   * Waits until the mailbox has room for one more frame: `true` then, or
   * `false` as soon as the connection stops accepting (closing or ended).
   * With {@link Connection.offerUnsafe} it lets a feeder move items into the
   * mailbox only in synchronous steps (accept and forget the item together),
   * which no interruption can split.
   */
  readonly awaitRoom: Effect.Effect<boolean>
  /** Frames waiting in the mailbox. */
  readonly size: () => number
  /** `false` once the connection has ended. */
  readonly isOpen: () => boolean
  readonly stats: () => Stats
  /**
   * Ends the connection gracefully: nothing offered after this call is
   * accepted, everything accepted before it is written, then `frames`, then the
   * stream ends as {@link Closed} with this `reason`. The producer
   * is interrupted. Returns `false` when the connection had already ended (or
   * was already closing).
   */
  readonly close: (reason: string, frames?: ReadonlyArray<Frame>) => Effect.Effect<boolean>
  /**
   * {@link Connection.close} as a plain call with encoded frames, for a
   * feeder that must close in the same synchronous step as its last offer.
   * The producer, if any, is interrupted without waiting for it. `false` when
   * the connection was already closing or ended.
   */
  readonly closeUnsafe: (reason: string, frames?: ReadonlyArray<Uint8Array>) => boolean
  /**
   * Ends the connection now: buffered frames are discarded (and counted), no
   * final frame is written. For clients that cannot keep up. Never waits for
   * the connection's fibers.
   */
  readonly kill: (reason: string) => Effect.Effect<void>
  /**
   * Tells the connection that its client is gone (the transport noticed,
   * for example the socket closed while the writer was idle). Ends it now as
   * {@link ClientGone}, discarding what is buffered. Never waits.
   */
  readonly lost: (error: WriteError) => Effect.Effect<void>
  /**
   * {@link Connection.lost} as a plain call, for transport callbacks (a
   * socket's `close` event) that run outside any fiber. `false` when the
   * connection had already ended.
   */
  readonly lostUnsafe: (error: WriteError) => boolean
  /**
   * {@link Connection.kill} as a plain call, for a feeder that must end a
   * connection in the middle of a synchronous loop. `false` when it had
   * already ended.
   */
  readonly killUnsafe: (reason: string) => boolean
  /**
   * Calls `observer` once, synchronously, with the {@link Outcome} as soon as
   * it is decided (before the connection's fibers have finished;
   * {@link Connection.outcome} resolves after they have), or at once if the
   * connection has already ended. Returns the function that removes it. It
   * runs inside whatever ended the connection: it must not throw, and must
   * not run effects synchronously (no `runSync`). For transports that must
   * react at once (end the response).
   */
  readonly addObserver: (observer: (outcome: Outcome) => void) => () => void
  /** Waits for the end and returns the {@link Outcome}. */
  readonly outcome: Effect.Effect<Outcome>
}

/**
 * Starts a connection in the current scope and returns its handle. Closing the
 * scope interrupts it (outcome {@link Interrupted}).
 *
 * Use it when something outside the producer needs to feed or end the
 * connection (a hub, a keyed registry). Otherwise use {@link run}.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Connection, SseEvent } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const conn = yield* Connection.make({ sink: (chunk) => Effect.log(chunk.byteLength) })
 *   yield* conn.close("done", [SseEvent.make({ event: "bye", data: "" })])
 *   return yield* conn.outcome
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <E = never, R = never>(options: Options<E, R>) => Effect.Effect<Connection, never, Scope.Scope | R> =
  internal.make

/**
 * `true` for a {@link Connection} handle.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.map(
 *   Connection.make({ sink: () => Effect.void }),
 *   (connection) => Connection.isConnection(connection) // true
 * ))
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isConnection = (u: unknown): u is Connection => typeof u === "object" && u !== null && TypeId in u

/**
 * Runs a connection to its end and returns the {@link Outcome}. All its
 * fibers have ended and its finalizers have run when this returns. If the
 * calling fiber is interrupted, the connection is interrupted with it.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Connection, SseEvent } from "@sluice/core"
 *
 * const outcome = Connection.run({
 *   producer: Stream.make(SseEvent.data("hello"), SseEvent.data("world")),
 *   sink: (chunk) => Effect.sync(() => process.stdout.write(chunk))
 * })
 * // Effect<Outcome>: { _tag: "Completed", delivered: 2, ... }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <E = never, R = never>(options: Options<E, R>): Effect.Effect<Outcome, never, R> =>
  Effect.scoped(Effect.flatMap(internal.make(options), (connection) => connection.outcome))
