/**
 * The collection: one node's starts, attaches, stops, and its shutdown.
 * The owner's side is in `owner.ts`, the other nodes' in `remote.ts`, a
 * client's cursor in `reader.ts`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Connection from "../../Connection.ts"
import * as Log from "../../Log.ts"
import type * as Resumable from "../../Resumable.ts"
import * as Coordinator from "../../ResumableCoordinator.ts"
import type { Frame } from "../../SseEvent.ts"
import { InvalidEventError } from "../../SseEvent.ts"
import { frameBytes } from "../encoder.ts"
import { FiberLabel } from "../fiberLabel.ts"
import { randomEpoch } from "../log/ids.ts"
import * as metrics from "../metrics.ts"
import { atLeast, check, millis } from "../options.ts"
import {
  CoordinatorError,
  type End,
  failed,
  idProblem,
  InvalidStopReasonError,
  InvalidStreamIdError,
  producerLost,
  reasonOf,
  stopped,
  stopReasonPattern,
  StreamLimitError,
  TypeId,
  UnknownStreamError
} from "./model.ts"
import { ask, type Node, now, openRecord, type StartOutcome } from "./node.ts"
import { Owned, run, type Settings } from "./owner.ts"
import { type Reader as ReaderType } from "./reader.ts"
import * as reader from "./reader.ts"
import type { Sender } from "./recorder.ts"
import * as remote from "./remote.ts"

class Collection implements Resumable.Resumable {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly node: string
  readonly state: Node
  readonly defaults: Resumable.StartOptions

  constructor(state: Node, defaults: Resumable.StartOptions) {
    this.state = state
    this.node = state.name
    this.defaults = defaults
  }

  stats = (): Resumable.Stats => {
    let retained = 0
    for (const owned of this.state.owned.values()) if (owned.phase === "ended") retained++
    return {
      running: this.state.running,
      retained,
      attached: this.state.attached,
      started: this.state.started,
      ended: { ...this.state.endedCounts }
    }
  }
}

const nodeOf = (self: Resumable.Resumable): Collection => self as Collection

// -----------------------------------------------------------------------------
// Options

const duration = (where: string, name: string, input: Duration.Input, min: number): number => {
  const ms = millis(input, Number.NaN)
  check(where, `${name} (a duration of at least ${min} ms)`, !Number.isNaN(ms) && ms >= min, input)
  return ms
}

const settingsOf = (where: string, options: Resumable.StartOptions<any>): Settings => {
  check(where, "maxEvents (a finite number, at least 1)", atLeast(options.maxEvents, 1), options.maxEvents)
  check(where, "maxBytes (a finite number, at least 1)", atLeast(options.maxBytes, 1), options.maxBytes)
  const lifetime = options.maxLifetime ?? "1 hour"
  const grace = options.detachGrace ?? false
  return {
    maxEvents: Math.floor(options.maxEvents ?? 100_000),
    maxBytes: Math.floor(options.maxBytes ?? 4 * 1024 * 1024),
    lifetimeMillis: lifetime === false ? undefined : duration(where, "maxLifetime", lifetime, 1),
    retentionMillis: duration(where, "retention", options.retention ?? "5 minutes", 0),
    detachMillis: grace === false ? undefined : duration(where, "detachGrace", grace, 1),
    failureMessage: options.failureMessage as Settings["failureMessage"]
  }
}

const merged = (defaults: Resumable.StartOptions, options: Resumable.StartOptions<any> | undefined) => {
  if (options === undefined) return defaults
  const out: Record<string, unknown> = { ...defaults }
  for (const [key, value] of Object.entries(options)) if (value !== undefined) out[key] = value
  return out as Resumable.StartOptions
}

// -----------------------------------------------------------------------------
// make

/** @internal */
export const make = (options: Resumable.Options = {}): Effect.Effect<Resumable.Resumable, never, Scope.Scope> =>
  Effect.gen(function*() {
    const where = "Resumable.make"
    check(where, "maxStreams (a finite number, at least 1)", atLeast(options.maxStreams, 1), options.maxStreams)
    check(where, "maxRetained (a finite number, at least 0)", atLeast(options.maxRetained, 0), options.maxRetained)
    const leaseMillis = duration(where, "lease", options.lease ?? "10 seconds", 4)
    const defaults = options.defaults ?? {}
    settingsOf(`${where}: defaults`, defaults)
    const shared = yield* Effect.serviceOption(Coordinator.Coordinator)
    const store = yield* Effect.serviceOption(Log.Store)
    if (shared._tag === "Some" && store._tag === "None") {
      throw new RangeError(
        `${where}: a ResumableCoordinator.Coordinator in context needs a Log.Store too (records must be readable from every node)`
      )
    }
    const random = yield* Random.Random
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const node: Node = {
      name: options.node ?? randomEpoch(() => random.nextDoubleUnsafe()),
      coordinator: shared._tag === "Some" ? shared.value : yield* Coordinator.makeMemory,
      store: store._tag === "Some" ? store.value : undefined,
      clock: yield* Clock.Clock,
      context: yield* Effect.context<never>(),
      fibers,
      leaseMillis,
      maxStreams: Math.floor(options.maxStreams ?? 1_000),
      maxRetained: Math.floor(options.maxRetained ?? 1_000),
      owned: new Map(),
      pending: new Map(),
      remotes: new Map(),
      running: 0,
      attached: 0,
      started: 0,
      endedCounts: { completed: 0, failed: 0, stopped: 0, expired: 0, producer_lost: 0 },
      closing: false
    }
    // Added after the fiber set, so it runs first: the runs are still there
    // to record the ends.
    yield* Effect.addFinalizer(() => shutdown(node))
    return new Collection(node, defaults)
  })

const shutdown = (node: Node): Effect.Effect<void> =>
  Effect.gen(function*() {
    node.closing = true
    const running = [...node.owned.values()].filter((o) => o.phase !== "ended")
    for (const owned of running) owned.requestEnd(producerLost)
    yield* Effect.timeoutOption(
      Effect.forEach(running, (o) => Deferred.await(o.done), { discard: true }),
      2 * node.leaseMillis
    )
    for (const owned of Array.from(node.owned.values())) {
      owned.deleted = true
      yield* Scope.close(owned.recordScope, Exit.void)
    }
    node.owned.clear()
    for (const r of Array.from(node.remotes.values())) yield* Scope.close(r.scope, Exit.void)
    node.remotes.clear()
  })

// -----------------------------------------------------------------------------
// start

const asFunction = <E, R>(producer: Resumable.Producer<E, R>): (sender: Sender) => Effect.Effect<void, E, R> =>
  Stream.isStream(producer)
    ? (sender) =>
      Stream.runForEachArray(
        producer as Stream.Stream<import("../../SseEvent.ts").Event, E, R>,
        (events) => sender.sendAll(events)
      ) as Effect.Effect<void, E, R>
    : producer as (sender: Sender) => Effect.Effect<void, E, R>

const statusOf = (id: string, node: Node, state: Coordinator.State): Resumable.Status =>
  state._tag === "Ended"
    ? { _tag: "Ended", id, end: state.end }
    : { _tag: "Running", id, local: state.owner === node.name }

const localStatus = (owned: Owned): Resumable.Status =>
  owned.phase === "ended" && owned.end !== undefined
    ? { _tag: "Ended", id: owned.id, end: owned.end }
    : { _tag: "Running", id: owned.id, local: true }

const refuse = <E>(reason: "limit" | "invalid" | "unavailable", error: E) =>
  Effect.andThen(Metric.update(metrics.resumableRefusedBy(reason), 1), Effect.fail(error))

/** @internal */
export const start = <E, R>(
  self: Resumable.Resumable,
  id: string,
  producer: Resumable.Producer<E, R>,
  options: Resumable.StartOptions<E> | undefined
): Effect.Effect<Resumable.Started, Resumable.StartError, R> =>
  Effect.gen(function*() {
    const collection = nodeOf(self)
    const node = collection.state
    const problem = idProblem(id)
    if (problem !== undefined) return yield* refuse("invalid", new InvalidStreamIdError({ id, reason: problem }))
    const settings = settingsOf("Resumable.start", merged(collection.defaults, options))
    const context = yield* Effect.context<R>()
    const body = asFunction(producer)
    // The producer's own scope inside the caller's services: its finalizers
    // run when it ends, not when the caller's scope closes.
    const runnable = (sender: Sender) => Effect.provideContext(Effect.scoped(body(sender)), context)
    const outcome = yield* startOnce(node, id, runnable, settings)
    if (outcome._tag === "Started") return outcome
    const existing = node.owned.get(id)
    const status = outcome.state === "local"
      ? existing === undefined ? { _tag: "Running", id, local: true } as const : localStatus(existing)
      : statusOf(id, node, outcome.state)
    return { _tag: "AlreadyStarted", id, status }
  })

const startOnce = (
  node: Node,
  id: string,
  producer: (sender: Sender) => Effect.Effect<void, unknown>,
  settings: Settings
): Effect.Effect<StartOutcome, Resumable.StartError> =>
  Effect.gen(function*() {
    if (node.closing) {
      return yield* refuse(
        "unavailable",
        new CoordinatorError({ operation: "claim", id, reason: "the collection is shutting down" })
      )
    }
    if (node.owned.has(id)) {
      yield* Metric.update(metrics.resumableStartsExisting, 1)
      return { _tag: "AlreadyStarted", id, state: "local" } as const
    }
    const inFlight = node.pending.get(id)
    if (inFlight !== undefined) {
      const first = yield* Deferred.await(inFlight) as Effect.Effect<StartOutcome, Resumable.StartError>
      yield* Metric.update(metrics.resumableStartsExisting, 1)
      return first._tag === "Started" ? { _tag: "AlreadyStarted", id, state: "local" } as const : first
    }
    if (node.running >= node.maxStreams) {
      return yield* refuse("limit", new StreamLimitError({ maxStreams: node.maxStreams }))
    }
    const done = Deferred.makeUnsafe<StartOutcome, unknown>()
    node.pending.set(id, done)
    node.running++
    // Nothing may interrupt between the claim and the producer's fork: a
    // claimed stream without a producer would wait for its lease.
    const exit = yield* Effect.exit(Effect.uninterruptible(claim(node, id, producer, settings)))
    node.pending.delete(id)
    if (Exit.isFailure(exit) || exit.value._tag !== "Started") node.running--
    Deferred.doneUnsafe(done, exit)
    if (Exit.isSuccess(exit) && exit.value._tag === "AlreadyStarted") {
      yield* Metric.update(metrics.resumableStartsExisting, 1)
    }
    if (Exit.isFailure(exit)) {
      yield* Metric.update(metrics.resumableRefusedBy("unavailable"), 1)
    }
    return yield* exit
  })

const claim = (
  node: Node,
  id: string,
  producer: (sender: Sender) => Effect.Effect<void, unknown>,
  settings: Settings
): Effect.Effect<StartOutcome, Resumable.StartError> =>
  Effect.gen(function*() {
    const random = yield* Random.Random
    const record = `resumable/${randomEpoch(() => random.nextDoubleUnsafe())}${
      randomEpoch(() => random.nextDoubleUnsafe())
    }`
    const lifetime = settings.lifetimeMillis ?? Number.POSITIVE_INFINITY
    const bounds = {
      // Room for the end marker (and one more, written by another node).
      maxEvents: settings.maxEvents + 2,
      // Ids and markers are not counted in maxBytes.
      maxBytes: settings.maxBytes + (settings.maxEvents + 2) * 48 + 4096,
      maxAgeMillis: lifetime + settings.retentionMillis + node.leaseMillis
    }
    const claimed = yield* ask(
      node,
      "claim",
      id,
      node.coordinator.claim(id, {
        owner: node.name,
        record,
        leaseMillis: node.leaseMillis / 2,
        ttlMillis: lifetime + settings.retentionMillis + node.leaseMillis,
        detachMillis: settings.detachMillis,
        retentionMillis: settings.retentionMillis,
        bounds
      })
    )
    if (claimed._tag === "Exists") return { _tag: "AlreadyStarted", id, state: claimed.state } as const
    const recordScope = yield* Scope.make()
    const log = yield* Effect.onError(openRecord(node, record, bounds, recordScope), () =>
      Effect.andThen(
        Scope.close(recordScope, Exit.void),
        Effect.ignore(ask(
          node,
          "finish",
          id,
          node.coordinator.finish(id, {
            end: failed("the stream's record could not be opened"),
            retentionMillis: settings.retentionMillis,
            owner: node.name
          })
        ))
      ))
    const owned = new Owned(id, record, log, recordScope, settings, now(node), Deferred.makeUnsafe<End>())
    node.owned.set(id, owned)
    node.started++
    yield* Metric.update(metrics.resumableStarted, 1)
    yield* Metric.modify(metrics.resumableActive, 1)
    // Claimed while the collection started closing: end it at once.
    if (node.closing) owned.decide(producerLost)
    yield* Effect.provideService(
      FiberSet.run(node.fibers, run(node, owned, producer)),
      FiberLabel,
      `sluice/resumable/${id}/run`
    )
    return { _tag: "Started", id } as const
  })

// -----------------------------------------------------------------------------
// attach

// A failed stream's safe message, as every sluice stream says it.
const failureFrames = (end: End): ReadonlyArray<Frame> =>
  end._tag === "Failed" ? [{ _tag: "Event", event: "error", data: JSON.stringify({ message: end.message }) }] : []

const encodeFrames = (frames: ReadonlyArray<Frame>): Effect.Effect<Array<Uint8Array>, InvalidEventError> =>
  Effect.suspend(() => {
    const out: Array<Uint8Array> = []
    for (const frame of frames) {
      const bytes = frameBytes(frame)
      if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
      out.push(bytes)
    }
    return Effect.succeed(out)
  })

/** The client's side at this node: its reader counted, on the owner or a remote record. */
const track = (
  node: Node,
  owned: Owned | undefined,
  shared: remote.Remote | undefined,
  r: ReaderType
): () => void => {
  node.attached++
  metrics.resumableAttached.modifyUnsafe(1, node.context)
  if (owned !== undefined) owned.clients++
  shared?.readers.add(r)
  let attached = true
  return () => {
    if (!attached) return
    attached = false
    node.attached--
    metrics.resumableAttached.modifyUnsafe(-1, node.context)
    shared?.readers.delete(r)
    if (owned !== undefined && --owned.clients === 0) owned.leftAt = now(node)
  }
}

/** @internal */
export const attach = (
  self: Resumable.Resumable,
  id: string,
  options: Resumable.AttachOptions
): Effect.Effect<Resumable.Attachment, Resumable.AttachError, Scope.Scope> =>
  Effect.gen(function*() {
    const node = nodeOf(self).state
    const problem = idProblem(id)
    if (problem !== undefined) return yield* new InvalidStreamIdError({ id, reason: problem })
    const gapEvent = options.gapEvent ?? "replay_gap"
    if (/[\r\n\0]/.test(gapEvent)) {
      return yield* new InvalidEventError({ field: "event", reason: "gapEvent must not contain CR, LF or NUL" })
    }
    const preamble = yield* encodeFrames(options.preamble ?? [])
    // A start of this id under way here: attach to what it starts.
    const inFlight = node.pending.get(id)
    if (inFlight !== undefined) yield* Effect.exit(Deferred.await(inFlight))
    const owned = node.owned.get(id)
    let shared: remote.Remote | undefined
    if (owned === undefined) {
      const state = yield* ask(node, "get", id, node.coordinator.get(id))
      if (state === undefined || node.store === undefined) return yield* new UnknownStreamError({ id })
      shared = yield* remote.acquire(node, state)
    }
    const log = owned?.log ?? shared!.log
    const capacity = Math.floor(options.capacity ?? 64)
    const r = yield* reader.Reader.make(log, { maxEvents: Math.max(1, capacity), maxBytes: 1024 * 1024 })
    const unlisten = r.listen()
    yield* Effect.addFinalizer(() => Effect.sync(unlisten))
    const from = yield* r.begin(options.lastEventId)
    if (from._tag === "Gap") preamble.push(reader.gapFrame(gapEvent, from.lastEventId, from.reason))
    let finish: reader.Finish | undefined
    const renderEnd = options.end ?? (() => [])
    const closeFrames = options.closeFrames ?? (() => [])
    const {
      closeFrames: _c,
      end: _e,
      gapEvent: _g,
      lastEventId: _l,
      preamble: _p,
      ...connectionOptions
    } = options
    const connection = yield* Connection.make({
      ...connectionOptions,
      preamble,
      producer: (sender) =>
        Effect.map(r.run(sender), (f) => {
          finish = f
        }),
      terminal: {
        completed: () => {
          const f = finish
          if (f === undefined || f._tag === "Unavailable") return safely(() => closeFrames("unavailable"))
          return [
            ...failureFrames(f.end),
            ...safely(() => renderEnd(f.end)),
            ...safely(() => closeFrames(reasonOf(f.end)))
          ]
        },
        // The reader does not fail; a defect in it leaves the client free to come back.
        failed: () => safely(() => closeFrames("unavailable"))
      }
    })
    const untrack = track(node, owned, shared, r)
    connection.addObserver(() => {
      untrack()
      unlisten()
    })
    return { id, connection, start: from, outcome: connection.outcome }
  })

// A renderer that throws costs its frames, not the close.
const safely = (render: () => ReadonlyArray<Frame>): ReadonlyArray<Frame> => {
  try {
    return render()
  } catch {
    return []
  }
}

// -----------------------------------------------------------------------------
// stop and status

const stopOwned = (owned: Owned, reason: string): Effect.Effect<Resumable.Stopped> =>
  Effect.gen(function*() {
    if (owned.phase === "ended" && owned.end !== undefined) {
      return { _tag: "AlreadyEnded", id: owned.id, end: owned.end } as const
    }
    const mine = owned.requestEnd(stopped(reason))
    const end = yield* Deferred.await(owned.done)
    return mine && end._tag === "Stopped" && end.reason === reason && !end.detached
      ? { _tag: "Stopped", id: owned.id, end } as const
      : { _tag: "AlreadyEnded", id: owned.id, end } as const
  })

/** @internal */
export const stop = (
  self: Resumable.Resumable,
  id: string,
  reason: string
): Effect.Effect<Resumable.Stopped, Resumable.StopError> =>
  Effect.gen(function*() {
    const node = nodeOf(self).state
    const problem = idProblem(id)
    if (problem !== undefined) return yield* new InvalidStreamIdError({ id, reason: problem })
    if (!stopReasonPattern.test(reason)) return yield* new InvalidStopReasonError({ reason })
    const inFlight = node.pending.get(id)
    if (inFlight !== undefined) yield* Effect.exit(Deferred.await(inFlight))
    const owned = node.owned.get(id)
    if (owned !== undefined) return yield* stopOwned(owned, reason)
    const result = yield* remote.stop(node, id, reason)
    return result._tag === "Requested" ? { _tag: "Requested", id } as const : { ...result, id }
  })

/** @internal */
export const status = (
  self: Resumable.Resumable,
  id: string
): Effect.Effect<Resumable.Status, Resumable.StopError> =>
  Effect.gen(function*() {
    const node = nodeOf(self).state
    const problem = idProblem(id)
    if (problem !== undefined) return yield* new InvalidStreamIdError({ id, reason: problem })
    const owned = node.owned.get(id)
    if (owned !== undefined) return localStatus(owned)
    const state = yield* ask(node, "get", id, node.coordinator.get(id))
    if (state === undefined) return yield* new UnknownStreamError({ id })
    return statusOf(id, node, state)
  })
