/**
 * The connection actor, assembled: a mailbox, a writer, deadlines and an
 * ending (see the modules of `connection/`), plus the producer when there is
 * one, in one scope.
 *
 * ```text
 * producer ─send─▶ ┐
 * hub / registry ──┴─offer─▶ mailbox ─▶ writer ─▶ sink
 *                              ▲ heartbeat    ▲ write deadline        (deadlines, on the clock's ticker)
 *                  ending: decided once, outcome + metrics + observers
 * ```
 *
 * Two constructors: {@link make} for users (a producer, or a handle to feed),
 * and {@link makeFed} for the hub and the registry, which register the
 * connection they feed in the same synchronous step as its first frames
 * ({@link Feeder}).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type * as Connection from "../Connection.ts"
import type { Frame } from "../SseEvent.ts"
import { type Burst } from "./burst.ts"
import { utf8 } from "./bytes.ts"
import { Deadlines } from "./connection/deadlines.ts"
import { Mailbox } from "./connection/mailbox.ts"
import { clientGone, closed, Ending, interrupted } from "./connection/outcome.ts"
import * as producers from "./connection/producer.ts"
import { Writer } from "./connection/writer.ts"
import { frameBytes } from "./encoder.ts"
import { forkLabelled } from "./fiberLabel.ts"
import { atLeast, check } from "./options.ts"

/** A connection as its feeder sees it: it can also share a burst. @internal */
export interface Fed extends Connection.Connection {
  /** `offerManyUnsafe` for a burst: offered whole to an empty mailbox, it is shared, not copied. */
  readonly offerBurstUnsafe: (burst: Burst, from: number) => number
}

/** What a hub or the registry gives a connection it feeds. @internal */
export interface Feeder {
  /**
   * Called once, synchronously, as soon as the connection accepts offers and
   * before any of its fibers start: whatever it registers (a subscription)
   * and the frames it returns (written before anything offered, outside the
   * mailbox's capacity) are fixed in one step.
   */
  readonly start: (connection: Fed) => ReadonlyArray<Uint8Array>
  /** Called synchronously before a close takes effect: deliver held events now. */
  readonly beforeClose?: (() => void) | undefined
  /**
   * Called synchronously, once, when the outcome is decided (before the
   * observers): stop offering. It runs inside whatever ended the connection;
   * it must not throw, nor run effects synchronously.
   */
  readonly onEnd?: ((outcome: Connection.Outcome) => void) | undefined
}

let nextId = 0

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

// Frames are never written to: every connection can share this one.
const plainHeartbeat = utf8(":\n\n")
// A comment frame, so that line breaks in the text become more comment lines
// (never a field of an event); a lone surrogate, which UTF-8 cannot carry,
// becomes U+FFFD: clients ignore comments, so there is nothing to refuse.
const heartbeatBytes = (text: string): Uint8Array =>
  frameBytes({ _tag: "Comment", text: text.toWellFormed() }) as Uint8Array

/** @internal */
export const TypeId: unique symbol = Symbol.for("@sluice/core/Connection") as never

// The preamble option, encoded; an invalid frame is a defect naming it.
const encodePreamble = (frames: ReadonlyArray<Frame | Uint8Array> | undefined): ReadonlyArray<Uint8Array> => {
  if (frames === undefined || frames.length === 0) return []
  return frames.map((frame, i) => {
    if (frame instanceof Uint8Array) return frame
    const bytes = frameBytes(frame)
    if (!(bytes instanceof Uint8Array)) check("Connection.make", `preamble[${i}] (${bytes.message})`, false, frame._tag)
    return bytes as Uint8Array
  })
}

interface Parts {
  readonly id: string
  readonly capacity: number
  readonly overflow: Connection.Strategy
  readonly box: Mailbox
  readonly ending: Ending
  readonly feeder: Feeder | undefined
  producerFiber: Fiber.Fiber<void> | undefined
}

// The handle: feeding the mailbox, closing through its end marker, ending now.
const handle = (parts: Parts): Fed => {
  const { box, ending, feeder, id } = parts
  return {
    [TypeId]: TypeId,
    id,
    capacity: parts.capacity,
    strategy: parts.overflow,
    offerUnsafe: (bytes) => box.offerUnsafe(bytes),
    offerManyUnsafe: (frames, from) => box.offerManyUnsafe(frames, from),
    offerBurstUnsafe: (burst, from) => box.offerBurstUnsafe(burst, from),
    offer: producers.offerOf(box),
    accepting: () => box.accepting(),
    awaitRoom: box.awaitRoom,
    size: () => box.size(),
    isOpen: () => !ending.settled,
    stats: () => ({ ...ending.stats }),
    close: (reason, frames = []) =>
      Effect.flatMap(
        Effect.andThen(Effect.sync(() => feeder?.beforeClose?.()), producers.encodeAll(id, frames)),
        (bytes) =>
          Effect.flatMap(
            Effect.sync(() => box.endUnsafe({ ended: closed(reason), frames: bytes })),
            (accepted) => {
              // The cut is the mailbox's end marker; the producer is then
              // stopped so that its finalizers run now, not when the scope closes.
              const producer = parts.producerFiber
              return producer === undefined ? Effect.succeed(accepted) : Effect.as(Fiber.interrupt(producer), accepted)
            }
          )
      ),
    closeUnsafe: (reason, frames = []) => {
      feeder?.beforeClose?.()
      const accepted = box.endUnsafe({ ended: closed(reason), frames })
      if (accepted) parts.producerFiber?.interruptUnsafe(Fiber.getCurrent()?.id)
      return accepted
    },
    kill: (reason) => ending.settle(closed(reason)),
    lost: (error) => ending.settle(clientGone(error)),
    lostUnsafe: (error) => ending.settleUnsafe(clientGone(error)),
    killUnsafe: (reason) => ending.settleUnsafe(closed(reason)),
    addObserver: (observer) => ending.addObserver(observer),
    outcome: ending.outcome
  }
}

/** @internal */
export const make = <E, R>(
  options: Connection.Options<E, R>
): Effect.Effect<Connection.Connection, never, Scope.Scope | R> => build(options, undefined)

/** A connection fed by a hub or the registry. @internal */
export const makeFed = (
  options: Connection.Options<never, never>,
  feeder: Feeder
): Effect.Effect<Fed, never, Scope.Scope> => build(options, feeder)

const build = <E, R>(
  options: Connection.Options<E, R>,
  feeder: Feeder | undefined
): Effect.Effect<Fed, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const parent = yield* Scope.Scope
    const scope = yield* Scope.fork(parent, "sequential")
    const context = yield* Effect.context<R>()
    const plain = context as Context.Context<never>
    const clock = yield* Clock.Clock
    const id = options.id ?? `c${++nextId}`
    check(
      "Connection.make",
      "capacity (a finite number of frames, at least 1)",
      atLeast(options.capacity, 1),
      options.capacity
    )
    const capacity = Math.floor(options.capacity ?? 64)
    const preamble = encodePreamble(options.preamble)
    const overflow = options.strategy ?? "suspend"
    const dropNotice = overflow === "suspend" ? undefined : options.dropNotice

    const ending = new Ending(
      id,
      plain,
      () => {
        deadlines.stop()
        // Discard what was accepted but not written, then refuse everything:
        // this also releases a producer blocked on a full mailbox.
        return box.shutdownUnsafe() + writer.unwritten()
      },
      feeder?.onEnd
    )
    const writer = new Writer(
      options.sink,
      capacity,
      overflow,
      dropNotice === undefined ? undefined : (missed) => producers.encodeAll(id, [dropNotice(missed)]),
      ending,
      clock,
      plain
    )
    const heartbeat = options.heartbeatText ? heartbeatBytes(options.heartbeatText) : plainHeartbeat
    const box = new Mailbox(capacity, overflow, heartbeat, writer.recordDrop)
    writer.attach(box)
    const deadlines = new Deadlines(
      clock,
      plain,
      millisOrUndefined(options.heartbeat, defaultHeartbeatMs),
      millisOrUndefined(options.writeTimeout, defaultWriteTimeoutMs),
      writer,
      box,
      ending
    )
    const producer = producers.run(id, box, options.producer, options.terminal ?? {})
    const parts: Parts = { id, capacity, overflow, box, ending, feeder, producerFiber: undefined }
    const connection = handle(parts)

    // From the feeder's start (which may register this connection) to the
    // last fork nothing may interrupt: the finalizer that ends the connection
    // is in place first, and every fiber is started.
    yield* Effect.uninterruptible(Effect.gen(function*() {
      yield* Scope.addFinalizer(scope, ending.settle(interrupted))
      writer.setPreamble(feeder === undefined ? preamble : feeder.start(connection))
      ending.fibers.push(yield* forkLabelled(writer.run, scope, `sluice/connection/${id}/writer`))
      deadlines.start()
      if (producer !== undefined) {
        const fiber = yield* forkLabelled(producer, scope, `sluice/connection/${id}/producer`)
        parts.producerFiber = fiber
        ending.fibers.push(fiber)
      }
    }))
    return connection
  })
