/**
 * The cross-node side of resumable streams: which node runs a stream's
 * producer, for how long it may (a lease it renews), whether someone asked
 * to stop it, and how it ended. `Resumable` keeps its events in a `Log`; it
 * keeps these few facts in a coordinator.
 *
 * ```text
 *  node A (owner)                    coordinator                     node B (clients)
 *  start ──claim(id)──────────────▶ Running{owner A, lease} ◀──get / touch── watcher
 *  every lease/4 ──renew──────────▶ lease extended          ◀──requestStop── stop(id)
 *  producer ends ──finish(end)────▶ Ended{end}  (once)      ◀──finish── lease ran out: producer_lost
 *  append end marker to the log                                 readers stop at the marker
 * ```
 *
 * Two implementations: {@link makeMemory} (this process: the default of
 * every collection, and, shared through {@link layerMemory}, several
 * collections acting as nodes) and a Redis one in `@sluice/redis`.
 *
 * What every implementation guarantees (the collection relies on each):
 * - **One claim**: of concurrent `claim`s of an id that has no state, exactly
 *   one gets `Claimed`; the others get `Exists` with that state (idempotent
 *   start across nodes).
 * - **One end**: `finish` moves a `Running` state to `Ended` at most once;
 *   every later `finish` is `Refused` with the state that won.
 * - **Leases on one clock**: `leaseExpired` is decided by the coordinator's
 *   clock (Redis: its own time), never by comparing clocks of nodes. A lease
 *   that has run out cannot be renewed (`Lost`), so a node that was declared
 *   lost cannot come back as the owner.
 * - **Finish without the owner only after the lease**: `finish` without an
 *   `owner` is refused while the lease runs.
 * - **Bounded life**: a state is forgotten `ttlMillis` after its claim while
 *   running, `retentionMillis` after its end, or when removed.
 * - **Typed failures**: an implementation that talks to a server fails with
 *   {@link CoordinatorError}.
 * - **Notifications are a shortcut, not a promise**: `watch` listeners hear
 *   of stop requests and ends as soon as the implementation can tell them;
 *   users also poll (`renew`, `get`), so a lost notification only costs time.
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as memory from "./internal/resumable/coordinatorMemory.ts"
import * as model from "./internal/resumable/model.ts"

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: typeof model.CoordinatorTypeId = model.CoordinatorTypeId

/**
 * How a resumable stream ended:
 * - `Completed`: the producer finished;
 * - `Failed`: the producer failed, or broke a bound; `message` is safe to
 *   show to clients (never the cause);
 * - `Stopped`: someone called `stop` (`reason`, default `stopped`), or the
 *   detach policy ended it (`detached: true`, reason `stopped`);
 * - `Expired`: it ran for its maximum lifetime;
 * - `ProducerLost`: the node running the producer died, lost its lease, or
 *   shut down.
 *
 * @since 0.2.0
 * @category models
 */
export type End = model.End

/**
 * A stream whose producer runs (or ran until its lease ran out) on `owner`.
 *
 * @since 0.2.0
 * @category models
 */
export type Running = model.Running

/**
 * A stream that has ended, kept for its retention time.
 *
 * @since 0.2.0
 * @category models
 */
export type Ended = model.Ended

/**
 * The bounds of a stream's log (count, bytes, age in ms; an age that is not
 * finite means none), kept with its state so that every node opens the
 * record as its owner did.
 *
 * @since 0.2.0
 * @category models
 */
export type RecordBounds = model.RecordBounds

/**
 * What a coordinator knows about one stream.
 *
 * @since 0.2.0
 * @category models
 */
export type State = model.State

/**
 * A coordinator operation that did not complete (the server did not answer,
 * refused, or timed out). Names the stream and the operation.
 *
 * @example
 * ```ts
 * import { ResumableCoordinator } from "@sluice/core"
 *
 * const error = new ResumableCoordinator.CoordinatorError({ operation: "renew", id: "chat-1", reason: "timed out after 2000 ms" })
 * error.message // 'resumable stream "chat-1": renew failed at the coordinator: timed out after 2000 ms'
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const CoordinatorError: typeof model.CoordinatorError = model.CoordinatorError

/**
 * @since 0.2.0
 * @category errors
 */
export type CoordinatorError = model.CoordinatorError

/**
 * What a node asks for when it starts a stream.
 *
 * @since 0.2.0
 * @category models
 */
export interface ClaimRequest {
  /** The node that will run the producer. */
  readonly owner: string
  /** The name of the stream's log for this start. */
  readonly record: string
  /** How long the lease runs before it must be renewed (ms). */
  readonly leaseMillis: number
  /** Upper bound of the state's life while it runs (ms): the stream's lifetime plus its retention. */
  readonly ttlMillis: number
  /** The detach policy's grace period (ms), if any: nodes with clients then `touch` the state. */
  readonly detachMillis: number | undefined
  /** How long the record is kept after the end (ms), whoever ends it. */
  readonly retentionMillis: number
  readonly bounds: RecordBounds
}

/**
 * The answer to a claim: this node now owns the stream, or it already
 * existed (running anywhere, or ended and retained).
 *
 * @since 0.2.0
 * @category models
 */
export type Claim =
  | { readonly _tag: "Claimed"; readonly state: Running }
  | { readonly _tag: "Exists"; readonly state: State }

/**
 * The answer to a renewal: the lease was extended (the state says whether a
 * stop was asked for and when a client was last seen), or it is lost (ended,
 * removed, run out, or owned by another node).
 *
 * @since 0.2.0
 * @category models
 */
export type Renewal =
  | { readonly _tag: "Renewed"; readonly state: Running }
  | { readonly _tag: "Lost"; readonly state: State | undefined }

/**
 * What a node asks for when a stream ends.
 *
 * @since 0.2.0
 * @category models
 */
export interface FinishRequest {
  readonly end: End
  /** How long the ended state is kept (ms). */
  readonly retentionMillis: number
  /**
   * The owner finishing its own stream. Without it the finish is a
   * declaration by another node, refused while the owner's lease runs.
   */
  readonly owner?: string | undefined
}

/**
 * The answer to a finish: this call decided the end, or it was refused (the
 * stream had ended already, is unknown, or its lease still runs).
 *
 * @since 0.2.0
 * @category models
 */
export type Finish =
  | { readonly _tag: "Finished"; readonly state: Ended }
  | { readonly _tag: "Refused"; readonly state: State | undefined }

/**
 * The coordinator service. Provide one shared by every node (Redis, from
 * `@sluice/redis`) together with a shared `Log.Store`, and streams started
 * on one node can be attached, resumed and stopped from any other.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Log, Resumable, ResumableCoordinator } from "@sluice/core"
 *
 * // Two collections acting as two nodes of one cluster (in one process).
 * const Shared = Layer.merge(ResumableCoordinator.layerMemory, Log.layerMemory)
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const a = yield* Resumable.make({ node: "a" })
 *   const b = yield* Resumable.make({ node: "b" })
 *   return [a.node, b.node]
 * })).pipe(Effect.provide(Shared))
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class Coordinator extends Context.Service<Coordinator, {
  readonly [TypeId]: typeof TypeId
  /** Registers `id`, owned by `request.owner`, unless it has a state already. */
  readonly claim: (id: string, request: ClaimRequest) => Effect.Effect<Claim, CoordinatorError>
  /** Extends the owner's lease by `leaseMillis` from now. */
  readonly renew: (id: string, owner: string, leaseMillis: number) => Effect.Effect<Renewal, CoordinatorError>
  /** Notes that a client is attached to `id` now (for the detach policy). */
  readonly touch: (id: string) => Effect.Effect<void, CoordinatorError>
  /** Asks the owner of a running stream to stop it; returns the state afterwards (`undefined`: unknown). */
  readonly requestStop: (id: string, reason: string) => Effect.Effect<State | undefined, CoordinatorError>
  /** Ends a running stream, once. */
  readonly finish: (id: string, request: FinishRequest) => Effect.Effect<Finish, CoordinatorError>
  /** The stream's state, `undefined` when unknown (never started, forgotten, removed). */
  readonly get: (id: string) => Effect.Effect<State | undefined, CoordinatorError>
  /** Forgets the stream if its state still names `record` (a newer start of the id is kept). */
  readonly remove: (id: string, record: string) => Effect.Effect<void, CoordinatorError>
  /**
   * Calls `listener` with the new state (or `undefined` when removed) when a
   * stop is requested, the stream ends or is removed, until the scope
   * closes. Best effort: see the module's guarantees.
   */
  readonly watch: (
    id: string,
    listener: (state: State | undefined) => void
  ) => Effect.Effect<void, never, Scope.Scope>
}>()("@sluice/core/ResumableCoordinator/Coordinator") {}

/**
 * An in-memory coordinator on the Effect `Clock`: the default of every
 * collection made without one in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ResumableCoordinator } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const coordinator = yield* ResumableCoordinator.makeMemory
 *   const claim = yield* coordinator.claim("chat-1", {
 *     owner: "node-a",
 *     record: "chat-1/1",
 *     leaseMillis: 5_000,
 *     ttlMillis: 3_600_000,
 *     detachMillis: undefined,
 *     retentionMillis: 300_000,
 *     bounds: { maxEvents: 1_000, maxBytes: 1_048_576, maxAgeMillis: 3_900_000 }
 *   })
 *   claim._tag // "Claimed"
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Coordinator["Service"]> = Effect.map(Clock.Clock, memory.makeUnsafe)

/**
 * Provides one in-memory {@link Coordinator}: every collection built with it
 * shares it, as nodes of one cluster would share Redis (with a `Log.Store`
 * that shares logs by name, they can attach to each other's streams).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ResumableCoordinator } from "@sluice/core"
 *
 * const program = Effect.gen(function*() {
 *   const coordinator = yield* ResumableCoordinator.Coordinator
 *   return yield* coordinator.get("chat-1") // undefined: never started
 * }).pipe(Effect.provide(ResumableCoordinator.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Coordinator> = Layer.effect(Coordinator, makeMemory)

/**
 * `true` for a coordinator (the service's value).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ResumableCoordinator } from "@sluice/core"
 *
 * const program = Effect.map(ResumableCoordinator.makeMemory, ResumableCoordinator.isCoordinator) // true
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isCoordinator = (u: unknown): u is Coordinator["Service"] =>
  typeof u === "object" && u !== null && model.CoordinatorTypeId in u
