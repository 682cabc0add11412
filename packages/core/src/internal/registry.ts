/**
 * The in-memory keyed registry behind `Registry.make` (and the dispatch to a
 * `Registry.Backend` for `Registry.fromBackend`).
 *
 * Each key is a lane: its live connection (with a generation, so that a
 * replaced connection's cleanup never touches its successor), its outbox of
 * waiting events, and its terminal event once sent. Events move from the
 * outbox to a connection only in synchronous steps, so a send and a connect
 * at the same moment never lose or duplicate an event. The budget counts the
 * bytes every outbox holds; expiry sweeps drop what outlived the time-to-live.
 *
 * Metrics (defined in `metrics.ts`): `sluice_registry_replaced_total`,
 * `sluice_registry_pending_dropped_total{reason}`,
 * `sluice_registry_budget_refusals_total`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import type * as Connection from "../Connection.ts"
import type * as Registry from "../Registry.ts"
import type { Frame } from "../SseEvent.ts"
import { makeFed } from "./connection.ts"
import { frameBytes } from "./encoder.ts"
import { forkLabelled } from "./fiberLabel.ts"
import * as metrics from "./metrics.ts"
import { atLeast, check } from "./options.ts"
import {
  KeyClosedError,
  PendingBudgetError,
  pendingEventOverhead,
  PendingFullError,
  TooManyKeysError,
  TypeId,
  UnknownKeyError
} from "./registry/errors.ts"

// A registry made by `fromBackend` carries its backend here; the operations
// below call it instead of the in-memory implementation.
const BackendKey = Symbol.for("@sluice/core/Registry/Backend")

const backendOf = (self: Registry.Registry): Registry.Backend | undefined =>
  (self as { readonly [BackendKey]?: Registry.Backend })[BackendKey]

/** @internal */
export const fromBackend = (backend: Registry.Backend): Registry.Registry => {
  const registry: Registry.Registry & { readonly [BackendKey]: Registry.Backend } = {
    [TypeId]: TypeId,
    [BackendKey]: backend,
    isLive: (key) => backend.isLive(key),
    pendingCount: (key) => backend.pendingCount(key),
    stats: () => backend.stats()
  }
  return registry
}

interface Waiting {
  readonly bytes: Uint8Array
  readonly at: number
  readonly terminal: string | undefined
}

interface Live {
  readonly connection: Connection.Connection
  readonly generation: number
  readonly closeFrames: (reason: string) => ReadonlyArray<Uint8Array>
}

interface Lane {
  readonly key: string
  /** Events not yet accepted by any connection, oldest first. */
  readonly outbox: Array<Waiting>
  live: Live | undefined
  generation: number
  /** Set by a terminal send: the key refuses later sends and replays this to late connections. */
  closed: { readonly reason: string; readonly event: Uint8Array; readonly at: number } | undefined
  /** A fiber is waiting for room in `live`'s mailbox to move the outbox on. */
  feeding: boolean
}

// What an event counts against the budget.
const cost = (w: Waiting): number => w.bytes.length + pendingEventOverhead

// Frames from configuration (preamble, close frames) are built by code, not
// clients: invalid ones are a defect of that code.
const encode = (frames: ReadonlyArray<Frame>): ReadonlyArray<Uint8Array> =>
  frames.map((frame) => {
    const bytes = frameBytes(frame)
    if (bytes instanceof Uint8Array) return bytes
    throw bytes
  })

class RegistryImpl implements Registry.Registry {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly lanes = new Map<string, Lane>()
  readonly counters = { replaced: 0, droppedOverflow: 0, droppedExpired: 0, droppedBudget: 0, refusedBudget: 0 }
  /** Bytes the outboxes of all lanes hold (see `cost`). */
  pendingBytes = 0
  /** When a spent budget last swept for expired events (at most once a second). */
  lastBudgetSweep = Number.NEGATIVE_INFINITY
  readonly capacity: number
  readonly ttlMillis: number
  readonly strategy: Registry.PendingStrategy
  readonly maxKeys: number
  readonly budget: { readonly maxBytes: number; readonly strategy: Registry.BudgetStrategy } | undefined
  readonly exists: ((key: string) => Effect.Effect<boolean>) | undefined
  readonly clock: Clock.Clock
  readonly scope: Scope.Scope
  readonly metrics: {
    readonly replaced: Metric.Metric<number, unknown>
    readonly overflow: Metric.Metric<number, unknown>
    readonly expired: Metric.Metric<number, unknown>
    readonly budget: Metric.Metric<number, unknown>
    readonly refused: Metric.Metric<number, unknown>
  }
  readonly context: Context.Context<never>

  constructor(
    options: Registry.Options,
    clock: Clock.Clock,
    scope: Scope.Scope,
    context: Context.Context<never>
  ) {
    const pending = options.pending?.capacity
    check("Registry", "pending.capacity (a finite number, at least 1)", atLeast(pending, 1), pending)
    check("Registry", "maxKeys (a number, at least 1)", atLeast(options.maxKeys, 1, false), options.maxKeys)
    this.capacity = Math.floor(pending ?? 256)
    this.ttlMillis = Duration.toMillis(Duration.fromInputUnsafe(options.pending?.ttl ?? "5 minutes"))
    this.strategy = options.pending?.strategy ?? "sliding"
    this.maxKeys = options.maxKeys ?? 100_000
    const budget = options.budget
    if (budget !== false) {
      const maxBytes = budget?.maxBytes
      check(
        "Registry",
        "budget.maxBytes (a number of bytes, at least 1; Infinity for none)",
        atLeast(maxBytes, 1, false),
        maxBytes
      )
      const strategy = budget?.strategy
      check(
        "Registry",
        `budget.strategy ("fail" or "dropping")`,
        strategy === undefined || strategy === "fail" || strategy === "dropping",
        strategy
      )
      this.budget = { maxBytes: maxBytes ?? 64 * 1024 * 1024, strategy: strategy ?? "fail" }
    } else {
      this.budget = undefined
    }
    this.exists = options.exists
    this.clock = clock
    this.scope = scope
    this.context = context
    this.metrics = {
      replaced: metrics.registryReplaced,
      overflow: Metric.withAttributes(metrics.registryPendingDropped, { reason: "overflow" }),
      expired: Metric.withAttributes(metrics.registryPendingDropped, { reason: "expired" }),
      budget: Metric.withAttributes(metrics.registryPendingDropped, { reason: "budget" }),
      refused: metrics.registryBudgetRefusals
    }
  }

  isLive = (key: string) => this.lanes.get(key)?.live !== undefined
  pendingCount = (key: string) => this.lanes.get(key)?.outbox.length ?? 0
  stats = (): Registry.Stats => {
    let live = 0
    let pending = 0
    for (const lane of this.lanes.values()) {
      if (lane.live !== undefined) live++
      pending += lane.outbox.length
    }
    return { keys: this.lanes.size, live, pending, pendingBytes: this.pendingBytes, ...this.counters }
  }

  now() {
    return this.clock.currentTimeMillisUnsafe()
  }

  lane(key: string): Lane | TooManyKeysError {
    const lane = this.lanes.get(key)
    if (lane !== undefined) return lane
    if (this.lanes.size >= this.maxKeys) this.sweep()
    if (this.lanes.size >= this.maxKeys) return new TooManyKeysError({ maxKeys: this.maxKeys })
    return this.create(key)
  }

  create(key: string): Lane {
    const lane: Lane = { key, outbox: [], live: undefined, generation: 0, closed: undefined, feeding: false }
    this.lanes.set(key, lane)
    return lane
  }

  expire(lane: Lane, now: number) {
    let n = 0
    while (n < lane.outbox.length && now - lane.outbox[n]!.at >= this.ttlMillis) n++
    if (n > 0) {
      this.release(lane.outbox.splice(0, n))
      this.counters.droppedExpired += n
      this.metrics.expired.updateUnsafe(n, this.context)
    }
  }

  /** Drops what outlived the time-to-live and forgets keys with nothing left. */
  sweep() {
    const now = this.now()
    for (const lane of this.lanes.values()) {
      this.expire(lane, now)
      if (lane.closed !== undefined && lane.live === undefined && now - lane.closed.at >= this.ttlMillis) {
        this.release(lane.outbox.splice(0))
        lane.closed = undefined
      }
      this.forgetIfIdle(lane)
    }
  }

  /** Events left the outboxes: their bytes go back to the budget. */
  release(gone: ReadonlyArray<Waiting>) {
    for (const w of gone) this.pendingBytes -= cost(w)
  }

  /**
   * Whether `waiting` fits the budget, once `freed` bytes leave (the oldest
   * event a full outbox drops). A spent budget first drops what expired.
   */
  fits(waiting: Waiting, freed: number): boolean {
    const budget = this.budget
    if (budget === undefined) return true
    const need = cost(waiting) - freed
    if (this.pendingBytes + need <= budget.maxBytes) return true
    if (waiting.at - this.lastBudgetSweep >= 1_000) {
      this.lastBudgetSweep = waiting.at
      this.sweep()
    }
    return this.pendingBytes + need <= budget.maxBytes
  }

  forgetIfIdle(lane: Lane) {
    if (
      lane.live === undefined && lane.outbox.length === 0 && lane.closed === undefined && !lane.feeding &&
      this.lanes.get(lane.key) === lane
    ) {
      this.lanes.delete(lane.key)
    }
  }

  closeLive(lane: Lane, reason: string) {
    const live = lane.live
    if (live !== undefined) live.connection.closeUnsafe(reason, live.closeFrames(reason))
  }

  // Moves the outbox into the live connection while its mailbox accepts. Each
  // event is accepted and removed in the same synchronous step. Returns whether
  // events are left for a connection that is only slow (its mailbox is full).
  pump(lane: Lane): boolean {
    const live = lane.live
    if (live === undefined) return false
    while (lane.outbox.length > 0) {
      const head = lane.outbox[0]!
      if (!live.connection.offerUnsafe(head.bytes)) break
      lane.outbox.shift()
      this.pendingBytes -= cost(head)
      if (head.terminal !== undefined) {
        this.closeLive(lane, head.terminal)
        return false
      }
    }
    return lane.outbox.length > 0 && !lane.feeding && live.connection.accepting()
  }

  // A slow client: a fiber waits for room in its mailbox and pumps again,
  // until the outbox is empty or the connection stops accepting.
  feed(lane: Lane): Effect.Effect<void> {
    return Effect.suspend(() => {
      const live = lane.live
      if (live === undefined || lane.feeding) return Effect.void
      lane.feeding = true
      const loop = Effect.gen({ self: this }, function*() {
        while (true) {
          const room = yield* live.connection.awaitRoom
          if (!room || lane.live !== live) return
          lane.feeding = false
          const more = this.pump(lane)
          lane.feeding = true
          if (!more) return
        }
      }).pipe(Effect.ensuring(Effect.sync(() => {
        lane.feeding = false
        this.forgetIfIdle(lane)
      })))
      return Effect.asVoid(forkLabelled(loop, this.scope, `sluice/registry/${lane.key}/feeder`))
    })
  }
}

const impl = (self: Registry.Registry): RegistryImpl => self as RegistryImpl

/** @internal */
export const make = (options: Registry.Options = {}): Effect.Effect<Registry.Registry, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const scope = yield* Scope.Scope
    const context = yield* Effect.context<never>()
    const registry = new RegistryImpl(options, clock, scope, context)
    const every = Math.max(1_000, Math.min(registry.ttlMillis / 4, 60_000))
    if (Number.isFinite(registry.ttlMillis)) {
      yield* forkLabelled(
        Effect.forever(Effect.andThen(Effect.sleep(every), Effect.sync(() => registry.sweep()))),
        scope,
        "sluice/registry/sweeper"
      )
    }
    return registry
  })

/** @internal */
export const send = (
  self: Registry.Registry,
  key: string,
  event: Frame,
  options: Registry.SendOptions = {}
): Effect.Effect<Registry.SendResult, Registry.SendError> =>
  Effect.suspend((): Effect.Effect<Registry.SendResult, Registry.SendError> => {
    const backend = backendOf(self)
    if (backend !== undefined) return backend.send(key, event, options)
    const registry = impl(self)
    const bytes = frameBytes(event)
    if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
    const lane = registry.lane(key)
    if (lane instanceof TooManyKeysError) return Effect.fail(lane)
    if (lane.closed !== undefined) return Effect.fail(new KeyClosedError({ key, reason: lane.closed.reason }))
    const now = registry.now()
    registry.expire(lane, now)
    const terminal = options.terminal
    if (terminal !== undefined) lane.closed = { reason: terminal, event: bytes, at: now }

    // Fast path: nothing waiting and the live mailbox has room.
    if (lane.live !== undefined && lane.outbox.length === 0 && lane.live.connection.offerUnsafe(bytes)) {
      if (terminal !== undefined) registry.closeLive(lane, terminal)
      return Effect.succeed("delivered" as const)
    }

    const full = lane.outbox.length >= registry.capacity
    // A terminal event always gets in: it ends the key.
    if (full && terminal === undefined && registry.strategy !== "sliding") {
      if (registry.strategy === "fail") return Effect.fail(new PendingFullError({ key, capacity: registry.capacity }))
      registry.counters.droppedOverflow++
      registry.metrics.overflow.updateUnsafe(1, registry.context)
      return Effect.succeed("dropped" as const)
    }
    const waiting: Waiting = { bytes, at: now, terminal }
    if (terminal === undefined && !registry.fits(waiting, full ? cost(lane.outbox[0]!) : 0)) {
      const budget = registry.budget!
      if (budget.strategy === "fail") {
        registry.counters.refusedBudget++
        registry.metrics.refused.updateUnsafe(1, registry.context)
        registry.forgetIfIdle(lane)
        return Effect.fail(
          new PendingBudgetError({ key, maxBytes: budget.maxBytes, pendingBytes: registry.pendingBytes })
        )
      }
      registry.counters.droppedBudget++
      registry.metrics.budget.updateUnsafe(1, registry.context)
      // The key may be new and hold nothing: don't keep it for nothing.
      registry.forgetIfIdle(lane)
      return Effect.succeed("dropped" as const)
    }
    if (full) {
      registry.counters.droppedOverflow++
      registry.metrics.overflow.updateUnsafe(1, registry.context)
      registry.release([lane.outbox.shift()!])
    }
    lane.outbox.push(waiting)
    registry.pendingBytes += cost(waiting)
    const slow = registry.pump(lane)
    const result = lane.outbox.includes(waiting) ? "pending" as const : "delivered" as const
    return slow ? Effect.as(registry.feed(lane), result) : Effect.succeed(result)
  })

/** @internal */
export const connect = (
  self: Registry.Registry,
  key: string,
  options: Registry.ConnectOptions
): Effect.Effect<Connection.Connection, Registry.ConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    const backend = backendOf(self)
    if (backend !== undefined) return yield* backend.connect(key, options)
    const registry = impl(self)
    // A key that already has a lane (events were sent to it) exists.
    if (registry.exists !== undefined && !registry.lanes.has(key)) {
      if (!(yield* registry.exists(key))) return yield* new UnknownKeyError({ key })
    }
    const admitted = registry.lane(key)
    if (admitted instanceof TooManyKeysError) return yield* admitted
    const preamble = encode(options.preamble ?? [])
    const closeFrames = (reason: string) => encode(options.closeFrames?.(reason) ?? [])
    let closeWith: string | undefined
    // Fixed when the connection starts accepting (below), not now: until then
    // the key may end and be forgotten, or be replaced by another connection.
    let lane: Lane | undefined
    let generation = 0

    const { closeFrames: _, preamble: __, ...connectionOptions } = options
    const connection = yield* makeFed(connectionOptions, {
      context: registry.context,
      // Called once, synchronously, when the connection starts accepting:
      // replacing the old connection, registering this one and taking the
      // waiting events are one step that no send can interleave with.
      start: (conn) => {
        const current = registry.lanes.get(key) ?? registry.create(key)
        lane = current
        generation = ++current.generation
        const old = current.live
        // Register first: closing the old connection can end it synchronously,
        // and its end must find its successor already in place.
        current.live = { connection: conn, generation, closeFrames }
        if (old !== undefined) {
          old.connection.closeUnsafe("replaced", old.closeFrames("replaced"))
          registry.counters.replaced++
          registry.metrics.replaced.updateUnsafe(1, registry.context)
        }
        registry.expire(current, registry.now())
        const taken = current.outbox.splice(0)
        registry.release(taken)
        const frames = [...preamble]
        for (const w of taken) {
          frames.push(w.bytes)
          if (w.terminal !== undefined) closeWith = w.terminal
        }
        // The key already ended (its terminal event went to an earlier
        // connection): tell this one at once.
        if (closeWith === undefined && current.closed !== undefined) {
          frames.push(current.closed.event)
          closeWith = current.closed.reason
        }
        return frames
      },
      onEnd: () => {
        // Identity check: only this connection's own registration is removed.
        if (lane !== undefined && lane.live?.generation === generation) {
          lane.live = undefined
          registry.forgetIfIdle(lane)
        }
      }
    })
    if (closeWith !== undefined) connection.closeUnsafe(closeWith, closeFrames(closeWith))
    return connection
  })

/** @internal */
export const disconnect = (
  self: Registry.Registry,
  key: string,
  reason: string
): Effect.Effect<boolean, Registry.RegistryUnavailableError> =>
  Effect.suspend(() => {
    const backend = backendOf(self)
    if (backend !== undefined) return backend.disconnect(key, reason)
    return Effect.sync(() => disconnectLocal(impl(self), key, reason))
  })

const disconnectLocal = (registry: RegistryImpl, key: string, reason: string): boolean => {
  const lane = registry.lanes.get(key)
  if (lane === undefined) return false
  registry.release(lane.outbox.splice(0))
  const live = lane.live
  if (live === undefined) {
    registry.forgetIfIdle(lane)
    return false
  }
  return live.connection.closeUnsafe(reason, live.closeFrames(reason))
}
