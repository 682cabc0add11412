/**
 * Keyed connections: at most one live stream per key (a task id, a request
 * id), with events sent to the key rather than to a connection.
 *
 * - **Replacement**: a new connection for a key replaces the live one. The
 *   old one writes what it had already accepted, then its close frames for
 *   reason `replaced`, and ends; the new one stays.
 * - **Identity-checked cleanup**: every connection registers with a fresh
 *   generation; its end removes the registration only if it is still its
 *   own. However a replaced connection's disconnect races with its
 *   successor, it can never remove or close the successor.
 * - **Pending events**: {@link send} to a key without a live connection (or
 *   whose live connection's mailbox is full) keeps the event in the key's
 *   bounded outbox (capacity, time-to-live, what to do when full). A connection
 *   for the key receives the outbox first, in order, then live events. Events
 *   move from the outbox to a connection only in synchronous steps (accepted
 *   and removed together), so sending and connecting at the same moment
 *   neither loses nor duplicates an event: each event is accepted by exactly
 *   one connection.
 * - **Terminal events**: `send(key, event, { terminal: reason })` delivers
 *   the event, then the close frames for `reason`, then ends the stream; the
 *   key refuses later sends (`KeyClosedError`). A connection that arrives
 *   later (while the key is remembered) receives the terminal event and the
 *   close frames at once, so a late or reconnecting client learns the end.
 * - **A budget across all keys**: the waiting events of every key together
 *   hold at most `budget.maxBytes` (each event counts its encoded size plus
 *   {@link pendingEventOverhead} bytes of bookkeeping). A send that does not
 *   fit is refused with {@link PendingBudgetError} (`strategy: "fail"`, the
 *   default) or dropped and counted (`strategy: "dropping"`,
 *   `sluice_registry_pending_dropped_total{reason="budget"}`). Terminal
 *   events always get in (at most one per key, and `maxKeys` bounds keys).
 * - **Unknown keys**: an optional `exists` lookup; {@link connect} fails with
 *   {@link UnknownKeyError} for a key it rejects.
 *
 * Metrics: `sluice_registry_replaced_total`,
 * `sluice_registry_pending_dropped_total{reason}` (`overflow`, `expired`,
 * `budget`) and `sluice_registry_budget_refusals_total`; `stats()` has the
 * bytes held (`pendingBytes`).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Scope from "effect/Scope"
import type * as Connection from "./Connection.ts"
import * as internal from "./internal/registry.ts"
import * as errors from "./internal/registry/errors.ts"
import type { Frame, InvalidEventError } from "./SseEvent.ts"

/**
 * What happens when a key's outbox is full and another event is sent (the
 * `strategy` words of CONVENTIONS.md):
 * - `sliding` (default): the oldest waiting event is dropped (counted);
 * - `dropping`: the new event is dropped (counted, `send` says `dropped`);
 * - `fail`: `send` fails with {@link PendingFullError}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "@sluice/core"
 *
 * // Progress updates: when nobody listens, only the newest 10 matter.
 * const progress = Registry.make({ pending: { capacity: 10, strategy: "sliding" } })
 * // Commands: refuse the 101st rather than lose one.
 * const commands = Registry.make({ pending: { capacity: 100, strategy: "fail" } })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type PendingStrategy = "sliding" | "dropping" | "fail"

/**
 * @since 0.1.0
 * @category models
 */
export interface PendingOptions {
  /** Events a key keeps while nobody (or a slow client) takes them. Default 256. */
  readonly capacity?: number | undefined
  /** How long a waiting event (and a finished key's terminal event) is kept. Default 5 minutes. */
  readonly ttl?: Duration.Input | undefined
  /** What to do when the outbox is full. Default `sliding`. See {@link PendingStrategy}. */
  readonly strategy?: PendingStrategy | undefined
}

/**
 * What a send does when the registry's budget for waiting events is spent:
 * - `fail` (default): `send` fails with {@link PendingBudgetError} (map it to
 *   a `503` with `Retry-After` over HTTP);
 * - `dropping`: the new event is dropped, `send` says `dropped`, and the drop
 *   is counted with reason `budget`.
 *
 * @since 0.2.0
 * @category models
 */
export type BudgetStrategy = "fail" | "dropping"

/**
 * The bound on waiting events across all keys.
 *
 * @since 0.2.0
 * @category models
 */
export interface BudgetOptions {
  /**
   * Bytes the waiting events of all keys may hold together: encoded frames
   * plus {@link pendingEventOverhead} per event. Default 64 MiB.
   */
  readonly maxBytes?: number | undefined
  /** Default `fail`. */
  readonly strategy?: BudgetStrategy | undefined
}

/**
 * Bytes of bookkeeping counted for each waiting event on top of its encoded
 * size, so that many tiny events are bounded by memory too: what V8 holds
 * per waiting event besides the frame's bytes (measured on Node 22: about
 * 180).
 *
 * @since 0.2.0
 * @category models
 */
export const pendingEventOverhead: number = errors.pendingEventOverhead

/**
 * Registry settings. A pending capacity that is not a finite number of at
 * least 1, or a `maxKeys` below 1, is a defect of `make`, naming the option.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly pending?: PendingOptions | undefined
  /** Decides whether a key exists; `connect` to a key it rejects fails with {@link UnknownKeyError}. Default: every key exists. */
  readonly exists?: ((key: string) => Effect.Effect<boolean>) | undefined
  /** Keys held at once (live or with waiting events). Default 100 000. */
  readonly maxKeys?: number | undefined
  /**
   * The bound on waiting events across all keys (the per-key `pending.capacity`
   * alone lets `maxKeys` × `capacity` events wait). `false` removes it.
   * Default `{ maxBytes: 64 MiB, strategy: "fail" }`.
   */
  readonly budget?: BudgetOptions | false | undefined
}

/**
 * Where a sent event went.
 * - `delivered`: accepted by the key's live connection;
 * - `pending`: waiting in the key's outbox;
 * - `dropped`: refused by a full outbox under `dropping`, or by a spent
 *   budget under the `dropping` strategy.
 *
 * @since 0.1.0
 * @category models
 */
export type SendResult = "delivered" | "pending" | "dropped"

/**
 * @since 0.1.0
 * @category models
 */
export interface SendOptions {
  /**
   * Makes this the key's last event: after it, the live (or next)
   * connection gets the close frames for this reason and ends.
   */
  readonly terminal?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends Omit<Connection.Options<never, never>, "producer" | "preamble" | "strategy"> {
  /** Frames written first (an opening event, a `retry:` hint), before the key's waiting events. */
  readonly preamble?: ReadonlyArray<Frame> | undefined
  /** The frames that end this connection for a reason (`replaced`, a terminal reason). Default: none. */
  readonly closeFrames?: ((reason: string) => ReadonlyArray<Frame>) | undefined
}

/**
 * Counters of a registry.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly keys: number
  readonly live: number
  /** Events waiting in outboxes. */
  readonly pending: number
  readonly replaced: number
  /** Waiting events dropped by a full outbox. */
  readonly droppedOverflow: number
  /** Waiting events dropped because they outlived the time-to-live. */
  readonly droppedExpired: number
  /** Bytes the waiting events hold, as the budget counts them. */
  readonly pendingBytes: number
  /** Sends dropped because the budget was spent (strategy `dropping`). */
  readonly droppedBudget: number
  /** Sends refused because the budget was spent (strategy `fail`). */
  readonly refusedBudget: number
}

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: typeof errors.TypeId = errors.TypeId

/**
 * A registry. Create it with {@link make} (in memory) or {@link fromBackend}
 * (kept elsewhere); use it with {@link send}, {@link connect},
 * {@link disconnect}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Registry {
  readonly [TypeId]: typeof TypeId
  /** Whether `key` has a live connection. */
  readonly isLive: (key: string) => boolean
  /** Events waiting for `key`. */
  readonly pendingCount: (key: string) => number
  readonly stats: () => Stats
}

/**
 * `connect` to a key that the `exists` lookup rejected.
 *
 * @since 0.1.0
 * @category errors
 */
export const UnknownKeyError: typeof errors.UnknownKeyError = errors.UnknownKeyError

/**
 * @since 0.1.0
 * @category errors
 */
export type UnknownKeyError = errors.UnknownKeyError

/**
 * A send to a key whose terminal event was already sent.
 *
 * @since 0.1.0
 * @category errors
 */
export const KeyClosedError: typeof errors.KeyClosedError = errors.KeyClosedError

/**
 * @since 0.1.0
 * @category errors
 */
export type KeyClosedError = errors.KeyClosedError

/**
 * A send to a key whose outbox is full, under the `fail` strategy.
 *
 * @since 0.1.0
 * @category errors
 */
export const PendingFullError: typeof errors.PendingFullError = errors.PendingFullError

/**
 * @since 0.1.0
 * @category errors
 */
export type PendingFullError = errors.PendingFullError

/**
 * A send refused because the waiting events of all keys already hold the
 * registry's budget (strategy `fail`). Over HTTP, answer `503` with
 * `Retry-After`: room comes back as clients connect or events expire.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry, SseEvent } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const registry = yield* Registry.make({ budget: { maxBytes: 1024 * 1024 } })
 *   const sent = yield* Registry.send(registry, "job-1", SseEvent.make({ data: "queued" })).pipe(
 *     Effect.catchTag("PendingBudgetError", (e) => Effect.succeed(`refused: ${e.message}`))
 *   )
 * })
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const PendingBudgetError: typeof errors.PendingBudgetError = errors.PendingBudgetError

/**
 * @since 0.2.0
 * @category errors
 */
export type PendingBudgetError = errors.PendingBudgetError

/**
 * A send to a new key while the registry holds `maxKeys` keys.
 *
 * @since 0.1.0
 * @category errors
 */
export const TooManyKeysError: typeof errors.TooManyKeysError = errors.TooManyKeysError

/**
 * @since 0.1.0
 * @category errors
 */
export type TooManyKeysError = errors.TooManyKeysError

/**
 * A registry kept outside this process (see {@link Backend}) could not be
 * reached: the send, connect or disconnect did not happen (or, for a send
 * that timed out, may have). Never raised by an in-memory registry.
 *
 * @since 0.2.0
 * @category errors
 */
export const RegistryUnavailableError: typeof errors.RegistryUnavailableError = errors.RegistryUnavailableError

/**
 * @since 0.2.0
 * @category errors
 */
export type RegistryUnavailableError = errors.RegistryUnavailableError

/**
 * Everything {@link send} can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type SendError =
  | InvalidEventError
  | KeyClosedError
  | PendingFullError
  | PendingBudgetError
  | TooManyKeysError
  | RegistryUnavailableError

/**
 * Everything {@link connect} can fail with.
 *
 * @since 0.2.0
 * @category errors
 */
export type ConnectError = UnknownKeyError | TooManyKeysError | RegistryUnavailableError

/**
 * The operations of a registry kept elsewhere (another process, Redis), for
 * {@link fromBackend}: {@link send}, {@link connect} and {@link disconnect}
 * on the registry it makes call these, so routes and code written for an
 * in-memory registry work with it unchanged. They must keep this module's
 * guarantees (one live connection per key, identity-checked cleanup, the
 * outbox before live events, terminal events). `isLive`, `pendingCount` and
 * `stats` may describe only what this process holds.
 *
 * @since 0.2.0
 * @category models
 */
export interface Backend {
  readonly send: (key: string, event: Frame, options: SendOptions) => Effect.Effect<SendResult, SendError>
  readonly connect: (
    key: string,
    options: ConnectOptions
  ) => Effect.Effect<Connection.Connection, ConnectError, Scope.Scope>
  readonly disconnect: (key: string, reason: string) => Effect.Effect<boolean, RegistryUnavailableError>
  readonly isLive: (key: string) => boolean
  readonly pendingCount: (key: string) => number
  readonly stats: () => Stats
}

/**
 * A registry whose operations are `backend`'s (a registry shared by many
 * processes, such as `RedisRegistry` in `@sluice/redis`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const local = yield* Registry.make()
 *   // a backend that logs every send, then sends through an in-memory registry
 *   const logged = Registry.fromBackend({
 *     send: (key, event, options) => Effect.tap(Registry.send(local, key, event, options), (r) => Effect.log(key, r)),
 *     connect: (key, options) => Registry.connect(local, key, options),
 *     disconnect: (key, reason) => Registry.disconnect(local, key, reason),
 *     isLive: local.isLive,
 *     pendingCount: local.pendingCount,
 *     stats: local.stats
 *   })
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromBackend = (backend: Backend): Registry => internal.fromBackend(backend)

/**
 * Creates a registry in the current scope. Closing the scope stops its
 * background work (expiry sweeps, feeders of slow connections).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry, SseEvent } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const tasks = yield* Registry.make({ pending: { capacity: 100, ttl: "10 minutes" } })
 *   yield* Registry.send(tasks, "task-42", SseEvent.make({ event: "progress", data: "10%" })) // "pending"
 *   // later, in an SSE route: Registry.connect(tasks, "task-42", { sink, ... }) gets "10%" first
 *   yield* Registry.send(tasks, "task-42", SseEvent.make({ event: "done", data: "100%" }), { terminal: "completed" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Registry, never, Scope.Scope> = internal.make

/**
 * `true` for a {@link Registry}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const tasks = yield* Registry.make()
 *   return [Registry.isRegistry(tasks), Registry.isRegistry({})] // [true, false]
 * })
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isRegistry = (u: unknown): u is Registry => typeof u === "object" && u !== null && TypeId in u

/**
 * Sends an event to `key`: to its live connection, or to its outbox (see
 * {@link SendResult}). With `{ terminal: reason }` it is the key's last
 * event: the stream then ends with the close frames for `reason`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry, SseEvent } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const tasks = yield* Registry.make()
 *   yield* Registry.send(tasks, "task-7", SseEvent.make({ event: "progress", data: "40" }))
 * })
 * // data-last, for example after the registry is made:
 * const sendDone = Registry.send("task-7", SseEvent.make({ event: "done", data: "100" }), { terminal: "completed" })
 * const program2 = Effect.flatMap(Registry.make(), sendDone)
 * ```
 *
 * @since 0.1.0
 * @category sending
 */
export const send: {
  (key: string, event: Frame, options?: SendOptions): (self: Registry) => Effect.Effect<SendResult, SendError>
  (self: Registry, key: string, event: Frame, options?: SendOptions): Effect.Effect<SendResult, SendError>
} = dual(
  (args) => isRegistry(args[0]),
  (self: Registry, key: string, event: Frame, options?: SendOptions) => internal.send(self, key, event, options)
)

/**
 * Starts the connection for `key` in the current scope, replacing the live
 * one if any. It receives `preamble`, then the key's waiting events, then
 * live events. Fails with {@link UnknownKeyError} when the `exists` lookup
 * rejects the key, or `TooManyKeysError` for a new key beyond `maxKeys`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry, SseEvent } from "@sluice/core"
 * import { TestSink } from "@sluice/core/testing"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const tasks = yield* Registry.make()
 *   const client = yield* TestSink.make()
 *   const connection = yield* Registry.connect(tasks, "task-7", {
 *     sink: client.sink,
 *     closeFrames: (reason) => [SseEvent.make({ event: "connection_close", data: JSON.stringify({ reason }) })]
 *   })
 *   yield* Registry.send(tasks, "task-7", SseEvent.make({ data: "hello" }), { terminal: "completed" })
 *   return yield* connection.outcome // Closed, reason "completed"
 * }))
 * ```
 *
 * @since 0.1.0
 * @category connecting
 */
export const connect: {
  (
    key: string,
    options: ConnectOptions
  ): (self: Registry) => Effect.Effect<Connection.Connection, ConnectError, Scope.Scope>
  (
    self: Registry,
    key: string,
    options: ConnectOptions
  ): Effect.Effect<Connection.Connection, ConnectError, Scope.Scope>
} = dual(3, (self: Registry, key: string, options: ConnectOptions) => internal.connect(self, key, options))

/**
 * Ends `key`'s live connection with the close frames for `reason` (what it
 * already accepted is written first) and forgets the key's waiting events.
 * Unlike a terminal `send`, the key stays open for later sends. `false` when
 * the key had no live connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Registry } from "@sluice/core"
 *
 * const cancel = (tasks: Registry.Registry, id: string) => Registry.disconnect(tasks, id, "cancelled")
 * ```
 *
 * @since 0.1.0
 * @category connecting
 */
export const disconnect: {
  (key: string, reason: string): (self: Registry) => Effect.Effect<boolean, RegistryUnavailableError>
  (self: Registry, key: string, reason: string): Effect.Effect<boolean, RegistryUnavailableError>
} = dual(3, (self: Registry, key: string, reason: string) => internal.disconnect(self, key, reason))
