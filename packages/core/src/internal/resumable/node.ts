/**
 * What one collection (one node) holds, and the steps its parts share:
 * opening a record, appending the end marker, retrying the coordinator.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import type * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as FiberSet from "effect/FiberSet"
import * as Scope from "effect/Scope"
import * as Log from "../../Log.ts"
import type * as Coordinator from "../../ResumableCoordinator.ts"
import * as marker from "./marker.ts"
import { CoordinatorError, type End, type EndKind, type RecordBounds } from "./model.ts"
import type { Owned } from "./owner.ts"
import type { Remote } from "./remote.ts"

/** The outcome of a start, shared with concurrent starts of the same id. @internal */
export type StartOutcome =
  | { readonly _tag: "Started"; readonly id: string }
  | { readonly _tag: "AlreadyStarted"; readonly id: string; readonly state: Coordinator.State | "local" }

/** @internal */
export interface Node {
  /** This node's name in the coordinator. */
  readonly name: string
  readonly coordinator: Coordinator.Coordinator["Service"]
  /** Where records live when they are shared; `undefined`: in-memory logs of this node. */
  readonly store: Log.Store["Service"] | undefined
  readonly clock: Clock.Clock
  readonly context: Context.Context<never>
  /** Background fibers (the streams' runs, retention timers), interrupted when the collection closes. */
  readonly fibers: FiberSet.FiberSet<unknown, unknown>
  readonly leaseMillis: number
  readonly maxStreams: number
  readonly maxRetained: number
  /** Streams whose producer runs or ran here, until their record is deleted. */
  readonly owned: Map<string, Owned>
  /** Starts in flight, by id. */
  readonly pending: Map<string, Deferred.Deferred<StartOutcome, unknown>>
  /** Records of streams owned elsewhere that clients here are attached to, by record name. */
  readonly remotes: Map<string, Remote>
  /** Producers running here, plus starts in flight. */
  running: number
  attached: number
  started: number
  readonly endedCounts: Record<EndKind, number>
  closing: boolean
}

/** @internal */
export const now = (node: Node): number => node.clock.currentTimeMillisUnsafe()

/** The log options of a record with these bounds. @internal */
export const logOptions = (bounds: RecordBounds): Log.Options => ({
  maxEvents: bounds.maxEvents,
  maxBytes: bounds.maxBytes,
  maxAge: Number.isFinite(bounds.maxAgeMillis) ? bounds.maxAgeMillis : Number.POSITIVE_INFINITY
})

/**
 * Opens a record: from the store when there is one (released with `scope`),
 * else a new in-memory log.
 *
 * @internal
 */
export const openRecord = (
  node: Node,
  record: string,
  bounds: RecordBounds,
  scope: Scope.Scope
): Effect.Effect<Log.Log, Log.LogError> =>
  node.store !== undefined
    ? Scope.provide(node.store.open(record, logOptions(bounds)), scope)
    : Log.makeMemory({ name: record, ...logOptions(bounds) })

/**
 * Runs `call` again after failures (50 ms, doubling, at most a quarter of
 * the budget apart) for at most `budgetMillis`; then its last failure.
 *
 * @internal
 */
export const retryFor = <A, E>(node: Node, budgetMillis: number, call: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const start = now(node)
    let delay = 50
    while (true) {
      const result = yield* Effect.result(call)
      if (result._tag === "Success") return result.success
      if (now(node) - start + delay > budgetMillis) return yield* Effect.fail(result.failure)
      yield* Effect.sleep(delay)
      delay = Math.min(delay * 2, Math.max(50, budgetMillis / 4))
    }
  })

/**
 * Appends the end marker, retrying for up to a lease: readers everywhere
 * wait for it. `false` when it could not be written (the coordinator still
 * knows the end, and watchers on other nodes write the marker then).
 *
 * @internal
 */
export const appendMarker = (node: Node, log: Log.Log, end: End): Effect.Effect<boolean> =>
  retryFor(node, node.leaseMillis, log.append([{ fields: marker.fields(end), id: undefined }])).pipe(
    Effect.as(true),
    Effect.catch(() =>
      Effect.as(
        Effect.logWarning(`sluice resumable: the end marker of ${log.name} could not be written`),
        false
      )
    )
  )

/**
 * A coordinator call with a deadline (default lease/2): a coordinator that
 * does not answer fails like one that refuses, naming the operation.
 *
 * @internal
 */
export const ask = <A>(
  node: Node,
  operation: CoordinatorError["operation"],
  id: string,
  call: Effect.Effect<A, CoordinatorError>,
  millis = node.leaseMillis / 2
): Effect.Effect<A, CoordinatorError> =>
  Effect.flatMap(Effect.timeoutOption(call, millis), (answer) =>
    answer._tag === "Some"
      ? Effect.succeed(answer.value)
      : Effect.fail(new CoordinatorError({ operation, id, reason: `no answer within ${millis} ms` })))

/** {@link ask}, retried for up to a lease. @internal */
export const retried = <A>(
  node: Node,
  operation: CoordinatorError["operation"],
  id: string,
  call: Effect.Effect<A, CoordinatorError>
): Effect.Effect<A, CoordinatorError> =>
  retryFor(node, node.leaseMillis, ask(node, operation, id, call, node.leaseMillis / 4))

/**
 * Registers a coordinator listener in the current scope, unless the
 * coordinator does not answer in time: notifications are a shortcut, and
 * everything that listens also polls.
 *
 * @internal
 */
export const listen = (
  node: Node,
  id: string,
  listener: (state: Coordinator.State | undefined) => void
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(Effect.timeoutOption(node.coordinator.watch(id, listener), node.leaseMillis / 4))
