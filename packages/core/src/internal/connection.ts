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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type * as Connection from "../Connection.ts"
import type { WriteError } from "../Sink.ts"
import type { Frame } from "../SseEvent.ts"
import { type Burst } from "./burst.ts"
import { utf8 } from "./bytes.ts"
import { Deadlines } from "./connection/deadlines.ts"
import { Mailbox } from "./connection/mailbox.ts"
import { clientGone, closed, Ending, interrupted, type Parts } from "./connection/outcome.ts"
import * as producers from "./connection/producer.ts"
import { Writer } from "./connection/writer.ts"
import { frameBytes } from "./encoder.ts"
import { forkLabelled } from "./fiberLabel.ts"
import { atLeast, check } from "./options.ts"

/** A connection as its feeder sees it (every connection can share a burst now: `offerBurstUnsafe`). @internal */
export type Fed = Connection.Connection

/** What a hub or the registry gives a connection it feeds. @internal */
export interface Feeder {
  /**
   * The context the connection runs in: the feeder's own (its metrics, its
   * scheduler), not the subscriber's. A fed connection runs no user code,
   * and a subscriber's context (a request's, with everything a router put
   * in it) would otherwise be kept for as long as the stream lasts.
   * Without it, the subscriber's.
   */
  readonly context?: Context.Context<never> | undefined
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

/**
 * The handle: feeding the mailbox, closing through its end marker, ending
 * now. One object per connection, its methods on the prototype: a
 * connection costs its parts, not a closure per operation.
 */
class Handle implements Fed, Parts {
  // On the prototype (below): nothing per connection.
  declare readonly [TypeId]: typeof TypeId
  readonly id: string
  readonly capacity: number
  readonly strategy: Connection.Strategy
  producerFiber: Fiber.Fiber<void> | undefined = undefined
  // Set by `build` right after the handle (they refer to it).
  box!: Mailbox
  writer!: Writer
  deadlines!: Deadlines
  readonly ending: Ending
  private readonly feeder: Feeder | undefined

  constructor(
    id: string,
    capacity: number,
    strategy: Connection.Strategy,
    feeder: Feeder | undefined,
    context: Context.Context<never>
  ) {
    this.id = id
    this.capacity = capacity
    this.strategy = strategy
    this.feeder = feeder
    this.ending = new Ending(id, context, this, feeder)
  }

  /**
   * The owning scope's finalizer: ends the connection as `interrupted`, then
   * waits for its fibers (made here: it holds the handle, nothing else).
   */
  finalizer(): Effect.Effect<Connection.Outcome> {
    return Effect.suspend(() => {
      this.ending.settleUnsafe(interrupted)
      return this.ending.outcome
    })
  }

  /** Stops the parts when the connection ends: what they held unwritten. */
  stop(): number {
    this.deadlines.stop()
    // Discard what was accepted but not written, then refuse everything:
    // this also releases a producer blocked on a full mailbox.
    return this.box.shutdownUnsafe() + this.writer.unwritten()
  }

  offerUnsafe(bytes: Uint8Array): boolean {
    return this.box.offerUnsafe(bytes)
  }
  offerManyUnsafe(frames: ReadonlyArray<Uint8Array>, from: number): number {
    return this.box.offerManyUnsafe(frames, from)
  }
  offerBurstUnsafe(burst: Burst, from: number): number {
    return this.box.offerBurstUnsafe(burst, from)
  }
  offer(bytes: Uint8Array): Effect.Effect<boolean> {
    return this.strategy === "suspend"
      ? this.box.offer(bytes)
      : Effect.sync(() => this.box.offerUnsafe(bytes) || this.box.accepting())
  }
  accepting(): boolean {
    return this.box.accepting()
  }
  get awaitRoom(): Effect.Effect<boolean> {
    return this.box.awaitRoom()
  }
  size(): number {
    return this.box.size()
  }
  isOpen(): boolean {
    return !this.ending.settled
  }
  stats(): Connection.Stats {
    return this.ending.stats()
  }
  close(reason: string, frames: ReadonlyArray<Frame> = []): Effect.Effect<boolean> {
    return Effect.flatMap(
      Effect.andThen(Effect.sync(() => this.feeder?.beforeClose?.()), producers.encodeAll(this.id, frames)),
      (bytes) =>
        Effect.flatMap(
          Effect.sync(() => this.box.endUnsafe({ ended: closed(reason), frames: bytes })),
          (accepted) => {
            // The cut is the mailbox's end marker; the producer is then
            // stopped so that its finalizers run now, not when the scope closes.
            const producer = this.producerFiber
            return producer === undefined ? Effect.succeed(accepted) : Effect.as(Fiber.interrupt(producer), accepted)
          }
        )
    )
  }
  closeUnsafe(reason: string, frames: ReadonlyArray<Uint8Array> = []): boolean {
    this.feeder?.beforeClose?.()
    const accepted = this.box.endUnsafe({ ended: closed(reason), frames })
    if (accepted) this.producerFiber?.interruptUnsafe(Fiber.getCurrent()?.id)
    return accepted
  }
  kill(reason: string): Effect.Effect<void> {
    return this.ending.settle(closed(reason))
  }
  lost(error: WriteError): Effect.Effect<void> {
    return this.ending.settle(clientGone(error))
  }
  lostUnsafe(error: WriteError): boolean {
    return this.ending.settleUnsafe(clientGone(error))
  }
  killUnsafe(reason: string): boolean {
    return this.ending.settleUnsafe(closed(reason))
  }
  addObserver(observer: (outcome: Connection.Outcome) => void): () => void {
    return this.ending.addObserver(observer)
  }
  get outcome(): Effect.Effect<Connection.Outcome> {
    return this.ending.outcome
  }
}

Object.defineProperty(Handle.prototype, TypeId, { value: TypeId })

// The owning scope's finalizer, holding the handle only.
const finalizerOf = (handle: Handle) => () => handle.finalizer()

/** @internal */
export const make = <E, R>(
  options: Connection.Options<E, R>
): Effect.Effect<Connection.Connection, never, Scope.Scope | R> => build(options, undefined)

/** A connection fed by a hub or the registry. @internal */
export const makeFed = (
  options: Connection.Options<never, never>,
  feeder: Feeder
): Effect.Effect<Fed, never, Scope.Scope> => build(options, feeder)

// Plain code in one step, with effects only where an effect is needed (the
// finalizer, forks): a connection is made per request, and a generator's
// steps were most of what making one cost.
const build = <E, R>(
  options: Connection.Options<E, R>,
  feeder: Feeder | undefined
): Effect.Effect<Fed, never, Scope.Scope | R> =>
  Effect.withFiber((fiber) => {
    const scope = Context.getUnsafe(fiber.context as Context.Context<Scope.Scope>, Scope.Scope)
    const plain = feeder?.context ?? fiber.context as Context.Context<never>
    const clock = Context.get(fiber.context, Clock.Clock)
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

    const connection = new Handle(id, capacity, overflow, feeder, plain)
    const ending = connection.ending
    const writer = new Writer(
      options.sink,
      dropNotice === undefined ? undefined : (missed) => producers.encodeAll(id, [dropNotice(missed)]),
      ending,
      clock
    )
    const heartbeat = options.heartbeatText ? heartbeatBytes(options.heartbeatText) : plainHeartbeat
    const box = new Mailbox(capacity, overflow, heartbeat, writer)
    writer.attach(box)
    const deadlines = new Deadlines(
      clock,
      millisOrUndefined(options.heartbeat, defaultHeartbeatMs),
      millisOrUndefined(options.writeTimeout, defaultWriteTimeoutMs),
      writer,
      box,
      ending
    )
    connection.box = box
    connection.writer = writer
    connection.deadlines = deadlines
    const producer = producers.run(id, box, options.producer, options.terminal ?? {})

    // From the feeder's start (which may register this connection) to the
    // last fork nothing may interrupt: the finalizer that ends the connection
    // is in place first (in the owning scope, run after the fibers' own:
    // it waits for them), and every fiber is started.
    const started = Effect.flatMap(Scope.addFinalizerExit(scope, finalizerOf(connection)), () => {
      writer.setPreamble(feeder === undefined ? preamble : feeder.start(connection))
      const writing = writer.start(scope)
      deadlines.start()
      if (producer === undefined) return Effect.as(writing, connection as Fed)
      return Effect.andThen(
        writing,
        Effect.map(forkLabelled(producer, scope, `sluice/connection/${id}/producer`), (producing): Fed => {
          connection.producerFiber = producing
          ending.track(producing)
          return connection
        })
      )
    })
    return Effect.uninterruptible(started)
  })
