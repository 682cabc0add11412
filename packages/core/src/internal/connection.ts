import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Connection from "../Connection.ts"
import { WriteError } from "../Sink.ts"
import type { Frame, InvalidEventError } from "../SseEvent.ts"
import { join, utf8 } from "./bytes.ts"
import { frameBytes } from "./encoder.ts"
import { forkLabelled } from "./fiberLabel.ts"
import { type End, Mailbox } from "./mailbox.ts"
import * as metrics from "./metrics.ts"
import { atLeast, check } from "./options.ts"
import * as ticker from "./ticker.ts"

const defaultFailureFrames = (): ReadonlyArray<Frame> => [{
  _tag: "Event",
  event: "error",
  data: JSON.stringify({ message: "The event stream failed" })
}]

let nextId = 0

// The last concatenation, shared: the subscribers of a broadcast usually take
// the very same frames, so one copy serves them all. An immutable array (a
// hub's burst, shared by the mailboxes) is recognised by identity; any other
// by comparing its elements.
let lastParts: ReadonlyArray<Uint8Array> = []
let lastSource: ReadonlyArray<Uint8Array> | undefined
let lastJoined: Uint8Array | undefined

const concat = (chunks: ReadonlyArray<Uint8Array>, immutable = false): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  if (lastJoined !== undefined) {
    if (immutable && chunks === lastSource) return lastJoined
    if (lastParts.length === chunks.length) {
      let same = true
      for (let i = 0; i < chunks.length; i++) {
        if (lastParts[i] !== chunks[i]) {
          same = false
          break
        }
      }
      if (same) return lastJoined
    }
  }
  let size = 0
  for (let i = 0; i < chunks.length; i++) size += chunks[i]!.byteLength
  const out = join(chunks, size)
  // Mutable arrays are handed back to their mailbox for reuse: keep a copy.
  lastParts = immutable ? chunks : chunks.slice()
  lastSource = immutable ? chunks : undefined
  lastJoined = out
  return out
}

const toPositiveMillis = (input: Duration.Input): number | undefined => {
  const ms = Duration.toMillis(Duration.fromInputUnsafe(input))
  return Number.isFinite(ms) && ms > 0 ? ms : undefined
}
const defaultHeartbeatMs = toPositiveMillis("15 seconds")
const defaultWriteTimeoutMs = toPositiveMillis("30 seconds")

const millisOrUndefined = (
  input: Duration.Input | false | undefined,
  fallback: number | undefined
): number | undefined => input === false ? undefined : input === undefined ? fallback : toPositiveMillis(input)

const outcomeMetrics = {
  completed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "completed" }),
  failed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "failed" }),
  "client-gone": Metric.withAttributes(metrics.connectionOutcomes, { reason: "client-gone" }),
  interrupted: Metric.withAttributes(metrics.connectionOutcomes, { reason: "interrupted" }),
  closed: Metric.withAttributes(metrics.connectionOutcomes, { reason: "closed" })
} as const

// Frames are never written to: every connection can share this one.
const plainHeartbeat = utf8(":\n\n")
// A comment frame, so that line breaks in the text become more comment lines
// (never a field of an event); a lone surrogate, which UTF-8 cannot carry,
// becomes U+FFFD: clients ignore comments, so there is nothing to refuse.
const heartbeatBytes = (text: string): Uint8Array =>
  frameBytes({ _tag: "Comment", text: text.toWellFormed() }) as Uint8Array
const dropMetrics = {
  "drop-oldest": Metric.withAttributes(metrics.eventsDropped, { reason: "drop-oldest" }),
  "drop-newest": Metric.withAttributes(metrics.eventsDropped, { reason: "drop-newest" })
} as const

/** @internal */
export const make = <E, R>(
  options: Connection.Options<E, R>
): Effect.Effect<Connection.Connection, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const parent = yield* Scope.Scope
    const scope = yield* Scope.fork(parent, "sequential")
    const context = yield* Effect.context<R>()
    const clock = yield* Clock.Clock
    const id = options.id ?? `c${++nextId}`
    check(
      "Connection.make",
      "capacity (a finite number of frames, at least 1)",
      atLeast(options.capacity, 1),
      options.capacity
    )
    const capacity = Math.floor(options.capacity ?? 64)
    const heartbeatMs = millisOrUndefined(options.heartbeat, defaultHeartbeatMs)
    const writeTimeoutMs = millisOrUndefined(options.writeTimeout, defaultWriteTimeoutMs)
    const heartbeatFrame = options.heartbeatText ? heartbeatBytes(options.heartbeatText) : plainHeartbeat
    const terminal = options.terminal ?? {}
    const sink = options.sink
    const overflow = options.overflow ?? "suspend"
    const dropNotice = overflow === "suspend" ? undefined : options.dropNotice

    const outcome = yield* Deferred.make<Connection.Outcome>()
    const stats = { delivered: 0, discarded: 0, dropped: 0, heartbeats: 0, writes: 0, bytes: 0 }
    // Watchdog inputs, written by the writer. Plain fields: all fibers run on one JS thread.
    const io = { writing: false, writeStartedAt: 0, lastActivityAt: clock.currentTimeMillisUnsafe() }
    let settled = false
    // Events in the write under way; delivered only when it completes.
    let inFlight = 0
    // Frames written before the mailbox, and how many of them the writer took.
    let preamble: ReadonlyArray<Uint8Array> = []
    let preambleTaken = 0
    // Drops not yet announced by a notice.
    let missed = 0
    const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
    const dropMetric = overflow === "suspend" ? undefined : dropMetrics[overflow]
    const recordDrop = () => {
      stats.dropped++
      if (dropNotice !== undefined) missed++
      dropMetric?.updateUnsafe(1, context)
    }
    const box = new Mailbox(capacity, overflow, heartbeatFrame, recordDrop)
    const delivered = metrics.deliveredCell(context)

    metrics.connectionsTotal.updateUnsafe(1, context)
    metrics.connectionsOpen.modifyUnsafe(1, context)

    // Frames from user code (renderers) may be invalid: log and skip them rather
    // than lose the whole terminal sequence.
    const encodeAll = (frames: ReadonlyArray<Frame>): Effect.Effect<ReadonlyArray<Uint8Array>> =>
      Effect.suspend(() => {
        const out: Array<Uint8Array> = []
        const invalid: Array<string> = []
        for (const frame of frames) {
          const bytes = frameBytes(frame)
          if (bytes instanceof Uint8Array) out.push(bytes)
          else invalid.push(bytes.message)
        }
        return invalid.length === 0
          ? Effect.succeed(out)
          : Effect.as(Effect.logWarning(`sluice connection ${id}: terminal frames skipped`, invalid), out)
      })

    const build = (reason: Connection.Reason, extra: Partial<Connection.Outcome>): Connection.Outcome =>
      ({
        id,
        reason,
        delivered: stats.delivered,
        discarded: stats.discarded,
        dropped: stats.dropped,
        heartbeats: stats.heartbeats,
        writes: stats.writes,
        bytes: stats.bytes,
        ...extra
      }) as Connection.Outcome

    // The single place where a connection ends. Whoever decides first (writer,
    // watchdog, handle, scope) wins; later calls see `settled` and do nothing.
    // It is synchronous so a hub can end a slow subscriber without waiting on it.
    const settleUnsafe = (reason: Connection.Reason, extra: Partial<Connection.Outcome> = {}): boolean => {
      if (settled) return false
      settled = true
      clockTicker.cancel(watchEntry)
      // Discard what was accepted but not written, then refuse everything:
      // shutdown also releases a producer blocked on a full mailbox (its offer
      // returns false), so it can never stay blocked after the writer stopped.
      // A batch inside an unfinished (or failed) write was never delivered.
      stats.discarded += box.shutdownUnsafe() + inFlight + preamble.length - preambleTaken
      inFlight = 0
      preambleTaken = preamble.length
      const result = build(reason, extra)
      metrics.connectionsOpen.modifyUnsafe(-1, context)
      metrics.eventsDiscarded.updateUnsafe(result.discarded, context)
      outcomeMetrics[reason].updateUnsafe(1, context)
      if (result.reason === "client-gone" && result.error.reason === "timeout") {
        metrics.writeTimeouts.updateUnsafe(1, context)
      }
      options.onEnd?.(result)
      // The outcome is published once the other fibers have ended, so that a
      // caller who sees it knows the producer's finalizers have run.
      const self = Fiber.getCurrent()
      const others = fibers.filter((f) => f !== self && f.pollUnsafe() === undefined)
      let pending = others.length
      const publish = () => Deferred.doneUnsafe(outcome, Effect.succeed(result))
      if (pending === 0) publish()
      for (const fiber of others) {
        fiber.addObserver(() => {
          if (--pending === 0) publish()
        })
        fiber.interruptUnsafe(self?.id)
      }
      return true
    }
    const settle = (reason: Connection.Reason, extra: Partial<Connection.Outcome> = {}) =>
      Effect.sync(() => {
        settleUnsafe(reason, extra)
      })

    const write = (chunks: ReadonlyArray<Uint8Array>, events: number): Effect.Effect<void, WriteError> => {
      const chunk = concat(chunks)
      inFlight = events
      io.writing = true
      io.writeStartedAt = clock.currentTimeMillisUnsafe()
      return Effect.tap(sink(chunk), () => {
        io.writing = false
        io.lastActivityAt = clock.currentTimeMillisUnsafe()
        stats.delivered += inFlight
        stats.writes++
        stats.bytes += chunk.byteLength
        delivered.count += inFlight
        inFlight = 0
        return Effect.void
      })
    }

    // The sink can write at once: a wake-up writes without resuming the writer
    // fiber (which stays parked on the mailbox). Anything unusual (a pending
    // drop notice, a full transport) goes through the writer.
    const tryWrite = sink.tryWrite
    if (tryWrite !== undefined) {
      box.fastPath = (frames, events) => {
        if (settled || missed !== 0) return false
        const chunk = concat(frames, box.isShared(frames))
        if (!tryWrite(chunk)) return false
        io.lastActivityAt = clock.currentTimeMillisUnsafe()
        stats.delivered += events
        stats.writes++
        stats.bytes += chunk.byteLength
        delivered.count += events
        box.recycle(frames)
        return true
      }
    }

    const clientGone = (error: WriteError) => settle("client-gone", { error } as Partial<Connection.Outcome>)
    const writeFailed = (cause: Cause.Cause<WriteError>) => {
      const error = Cause.findErrorOption(cause)
      return error._tag === "Some"
        ? clientGone(error.value)
        : settle("failed", { cause } as Partial<Connection.Outcome>)
    }

    // The notice for the drops since the last one, placed where the gap is:
    // under drop-oldest the dropped frames were the oldest waiting, so the gap
    // is before this batch; under drop-newest the mailbox stayed full from the
    // first drop until this take, so everything in the batch came before it.
    const withNotice = (batch: ReadonlyArray<Uint8Array>): Effect.Effect<ReadonlyArray<Uint8Array>> => {
      if (missed === 0 || dropNotice === undefined) return Effect.succeed(batch)
      const count = missed
      missed = 0
      return Effect.map(encodeAll([dropNotice(count)]), (notice) =>
        notice.length === 0 ? batch : overflow === "drop-oldest" ? [...notice, ...batch] : [...batch, ...notice])
    }

    // The writer: the preamble first, then takes everything available from the
    // mailbox and writes it as one chunk.
    const writer: Effect.Effect<void> = Effect.gen(function*() {
      while (preambleTaken < preamble.length) {
        const batch = preamble.slice(preambleTaken, preambleTaken + capacity)
        preambleTaken += batch.length
        const result = yield* Effect.exit(write(batch, batch.length))
        if (Exit.isFailure(result)) {
          return yield* writeFailed(result.cause)
        }
      }
      while (true) {
        const taken = yield* box.take
        if (taken._tag === "Frames") {
          const frames = missed === 0 ? taken.frames : yield* withNotice(taken.frames)
          const result = yield* Effect.exit(write(frames, taken.events + frames.length - taken.frames.length))
          if (Exit.isFailure(result)) {
            return yield* writeFailed(result.cause)
          }
          box.recycle(taken.frames)
          continue
        }
        if (taken._tag === "Shutdown") {
          // Ended by `settle` elsewhere: nothing left to do.
          return yield* settle("interrupted")
        }
        const { frames, reason } = taken.end
        if (frames.length > 0) {
          const result = yield* Effect.exit(write(frames, frames.length))
          if (Exit.isFailure(result)) {
            const error = Cause.findErrorOption(result.cause)
            if (error._tag === "Some") {
              return yield* clientGone(error.value)
            }
          }
        }
        return yield* settle(reason, {
          ...(taken.end.cause === undefined ? {} : { cause: taken.end.cause }),
          ...(taken.end.closeReason === undefined ? {} : { closeReason: taken.end.closeReason })
        } as Partial<Connection.Outcome>)
      }
    }).pipe(Effect.onInterrupt(() =>
      settle("interrupted")
    ))

    // The watchdog: heartbeats for idle connections and the write deadline,
    // on the clock's shared ticker (no fiber or timer of its own). Re-armed
    // from the writer's timestamps, so a busy connection costs nothing per write.
    const watch = (now: number): number | undefined => {
      if (settled) return undefined
      if (io.writing && writeTimeoutMs !== undefined) {
        const deadline = io.writeStartedAt + writeTimeoutMs
        if (now < deadline) return deadline
        const error = new WriteError({
          reason: "timeout",
          detail: `a write did not finish within ${writeTimeoutMs} ms`
        })
        settleUnsafe("client-gone", { error } as Partial<Connection.Outcome>)
        return undefined
      }
      let next = Number.POSITIVE_INFINITY
      if (heartbeatMs !== undefined) {
        const due = io.lastActivityAt + heartbeatMs
        if (now >= due) {
          // Something waiting means the writer has work: no heartbeat needed.
          if (box.offerHeartbeatUnsafe()) {
            stats.heartbeats++
            metrics.heartbeatsSent.updateUnsafe(1, context)
          }
          io.lastActivityAt = now
          next = now + heartbeatMs
        } else {
          next = due
        }
      }
      // A write starting after this check has its deadline at least one
      // timeout away, so waking by then keeps the deadline exact.
      if (writeTimeoutMs !== undefined) next = Math.min(next, now + writeTimeoutMs)
      return next === Number.POSITIVE_INFINITY ? undefined : next
    }
    const watchEntry = ticker.entry(watch)
    const clockTicker = ticker.tickerFor(clock)

    const accepting = () => box.accepting()
    const awaitRoom = box.awaitRoom
    const offerUnsafe = (bytes: Uint8Array): boolean => box.offerUnsafe(bytes)
    // Under a dropping overflow an offer never waits: a drop counts as handled.
    const offer = overflow === "suspend"
      ? (bytes: Uint8Array) => box.offer(bytes)
      : (bytes: Uint8Array) => Effect.sync(() => box.offerUnsafe(bytes) || box.accepting())
    // In order: what fits at once, then one waiting offer at a time.
    const offerAll = (frames: ReadonlyArray<Uint8Array>): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        let i = 0
        while (i < frames.length && offerUnsafe(frames[i]!)) i++
        if (i === frames.length) return Effect.succeed(true)
        if (!accepting()) return Effect.succeed(false)
        const rest = frames.slice(i)
        const next = (k: number): Effect.Effect<boolean> =>
          k === rest.length
            ? Effect.succeed(true)
            : Effect.flatMap(offer(rest[k]!), (ok) => ok ? next(k + 1) : Effect.succeed(false))
        return next(0)
      })

    const refuseOffer = Effect.interrupt
    const mailbox: Connection.Mailbox = {
      send: (frame) =>
        Effect.suspend(() => {
          const bytes = frameBytes(frame)
          if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
          return Effect.flatMap(offer(bytes), (ok) => ok ? Effect.void : refuseOffer)
        }),
      // Encodes at most one mailbox's worth ahead of the writer, so a huge batch
      // from a stream costs neither a burst of encoding nor a copy of itself.
      sendAll: (frames) =>
        Effect.suspend(() => {
          const it = frames[Symbol.iterator]()
          let failure: InvalidEventError | undefined
          let done = false
          const nextSlice = (): Array<Uint8Array> => {
            const out: Array<Uint8Array> = []
            while (out.length < capacity) {
              const next = it.next()
              if (next.done) {
                done = true
                break
              }
              const bytes = frameBytes(next.value)
              if (!(bytes instanceof Uint8Array)) {
                failure = bytes
                done = true
                break
              }
              out.push(bytes)
            }
            return out
          }
          const loop: Effect.Effect<void, InvalidEventError> = Effect.suspend(() => {
            const slice = nextSlice()
            const offered = slice.length === 0
              ? Effect.void
              : Effect.flatMap(offerAll(slice), (ok) => ok ? Effect.void : refuseOffer)
            return Effect.andThen(
              offered,
              Effect.suspend(() => failure !== undefined ? Effect.fail(failure) : done ? Effect.void : loop)
            )
          })
          return loop
        }),
      sendBytes: (bytes) => Effect.flatMap(offer(bytes), (ok) => ok ? Effect.void : refuseOffer)
    }

    const endWith = (end: End) => Effect.sync(() => box.endUnsafe(end))

    const producerEffect = (): Effect.Effect<void, E, R> | undefined => {
      const producer = options.producer
      if (producer === undefined) return undefined
      if (Stream.isStream(producer)) {
        return Stream.runForEachArray(
          producer as Stream.Stream<Frame, E, R>,
          (frames) => mailbox.sendAll(frames)
        ) as Effect.Effect<void, E, R>
      }
      return (producer as (mailbox: Connection.Mailbox) => Effect.Effect<void, E, R>)(mailbox)
    }

    // The producer's outcome is read from its exit, after it has ended, and
    // becomes the mailbox's end marker.
    const producer = producerEffect()
    const runProducer = producer === undefined ? undefined : Effect.onExit(producer, (exit) => {
      if (Exit.isSuccess(exit)) {
        return Effect.flatMap(
          encodeAll(terminal.completed?.() ?? []),
          (frames) => endWith({ reason: "completed", frames })
        )
      }
      if (Cause.hasInterruptsOnly(exit.cause)) {
        return endWith({ reason: "interrupted", frames: [] })
      }
      const cause = exit.cause as Cause.Cause<E>
      return Effect.flatMap(
        encodeAll((terminal.failed ?? defaultFailureFrames)(cause)),
        (frames) => endWith({ reason: "failed", frames, cause })
      )
    })

    let producerFiber: Fiber.Fiber<void> | undefined
    const connection: Connection.Connection = {
      id,
      capacity,
      overflow,
      offerUnsafe,
      offerManyUnsafe: (frames, from, frozen) => box.offerManyUnsafe(frames, from, frozen === true),
      offer,
      accepting,
      awaitRoom,
      size: () => box.size(),
      isOpen: () => !settled,
      stats: () => ({ ...stats }),
      close: (reason, frames = []) =>
        Effect.flatMap(
          Effect.andThen(Effect.sync(() => options.beforeClose?.()), encodeAll(frames)),
          (bytes) =>
            Effect.flatMap(endWith({ reason: "closed", frames: bytes, closeReason: reason }), (accepted) => {
              // The cut is the mailbox's end marker above; the producer is then
              // stopped so that its finalizers run now, not when the scope closes.
              return producerFiber === undefined
                ? Effect.succeed(accepted)
                : Effect.as(Fiber.interrupt(producerFiber), accepted)
            })
        ),
      closeUnsafe: (reason, frames = []) => {
        options.beforeClose?.()
        const accepted = box.endUnsafe({ reason: "closed", frames, closeReason: reason })
        if (accepted) {
          producerFiber?.interruptUnsafe(Fiber.getCurrent()?.id)
        }
        return accepted
      },
      kill: (reason) => settle("closed", { closeReason: reason } as Partial<Connection.Outcome>),
      lost: (error) => settle("client-gone", { error } as Partial<Connection.Outcome>),
      lostUnsafe: (error) => settleUnsafe("client-gone", { error } as Partial<Connection.Outcome>),
      killUnsafe: (reason) => settleUnsafe("closed", { closeReason: reason } as Partial<Connection.Outcome>),
      outcome: Deferred.await(outcome)
    }

    // From the preamble call (which may register this connection with a
    // feeder) to the last fork nothing may interrupt: the finalizer that ends
    // the connection is in place first, and every fiber is started.
    yield* Effect.uninterruptible(Effect.gen(function*() {
      yield* Scope.addFinalizer(scope, settle("interrupted"))
      preamble = typeof options.preamble === "function" ? options.preamble(connection) : options.preamble ?? []
      fibers.push(yield* forkLabelled(writer, scope, `sluice/connection/${id}/writer`))
      const first = watch(clock.currentTimeMillisUnsafe())
      if (first !== undefined) clockTicker.schedule(watchEntry, first, context as Context.Context<never>)
      if (runProducer !== undefined) {
        producerFiber = yield* forkLabelled(Effect.ignore(runProducer), scope, `sluice/connection/${id}/producer`)
        fibers.push(producerFiber)
      }
    }))
    return connection
  })
