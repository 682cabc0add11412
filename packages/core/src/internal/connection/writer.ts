/**
 * A connection's writer: takes everything waiting in the mailbox and writes
 * it to the sink as one chunk, in order, after the preamble.
 *
 * It decides how to write. When its sink can take a chunk at once
 * (`Sink.tryWrite`), the writer writes in the stack of whoever woke it (a
 * hub ending a burst, the scheduler): a broadcast costs no fiber wake-up per
 * subscriber. Anything else (a pending drop notice, a transport that pushes
 * back, the end) goes to the writer's fiber, which writes with the effectful
 * sink and waits for it.
 *
 * The fiber runs only while there is effectful work: for a sink with
 * `tryWrite`, it is started when a write must wait and ends once the mailbox
 * is empty again, so an idle connection holds no fiber; a sink without it
 * writes only through effects, and its writer keeps one fiber for the
 * connection's life.
 *
 * - A batch is delivered only when its write completes; a write that fails
 *   ends the connection as `client-gone` (or `failed` for a defect).
 * - The preamble is written first, in batches of at most `capacity` frames.
 * - A drop notice goes where the gap is: before the batch under
 *   `sliding` (the dropped frames were the oldest waiting), after it under
 *   `dropping` (the mailbox stayed full from the first drop until the take).
 * - At the mailbox's end marker: its frames, then the outcome.
 *
 * Metric: `sluice_events_delivered_total`, `sluice_events_dropped_total{reason}`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import type { Sink, WriteError } from "../../Sink.ts"
import { type Burst, chunkOf, type Taken } from "../burst.ts"
import { FiberLabel, forkLabelled } from "../fiberLabel.ts"
import * as metrics from "../metrics.ts"
import type { Activity } from "./deadlines.ts"
import type { Mailbox, Take } from "./mailbox.ts"
import { clientGone, type Ending, failed, interrupted } from "./outcome.ts"

const noFrames: ReadonlyArray<Uint8Array> = []

const dropMetrics = {
  sliding: Metric.withAttributes(metrics.eventsDropped, { reason: "sliding" }),
  dropping: Metric.withAttributes(metrics.eventsDropped, { reason: "dropping" })
} as const

/** What the mailbox calls on the writer. @internal */
export interface Parked {
  /** There is something to take (or the mailbox shut down). */
  wake(): void
  /** `frames[from..]`, more than the mailbox holds, written now if the writer can: `false`, having written nothing, otherwise. */
  writeThrough(frames: ReadonlyArray<Uint8Array>, from: number, whole: Burst | undefined): boolean
  /** The mailbox dropped an event under a dropping overflow. */
  recordDrop(): void
}

/** @internal */
export class Writer implements Activity, Parked {
  writing = false
  writeStartedAt = 0
  lastActivityAt: number
  // Events in the write under way: delivered only when it completes.
  private inFlight = 0
  // Frames written before the mailbox, and how many of them were taken
  // (let go once all were: a stream lasts, its opening frames need not).
  private preamble: ReadonlyArray<Uint8Array> = noFrames
  private preambleTaken = 0
  // Drops not yet announced by a notice.
  private missed = 0
  // The fiber while it runs, and its resumption while it waits on the mailbox.
  private fiber: Fiber.Fiber<void> | undefined = undefined
  private resume: ((take: Take) => void) | undefined = undefined
  private waitForTake: Effect.Effect<Take> | undefined = undefined
  // Capacity and overflow are the mailbox's, id and context the ending's: a
  // writer keeps what only it has (a connection is made per subscriber).
  private box!: Mailbox
  private readonly delivered: { count: number }
  private readonly sink: Sink
  private readonly notice: ((missed: number) => Effect.Effect<ReadonlyArray<Uint8Array>>) | undefined
  private readonly ending: Ending
  private readonly clock: Clock.Clock

  /** @param notice the drop notice for `missed` events, encoded (none: drops are only counted). */
  constructor(
    sink: Sink,
    notice: ((missed: number) => Effect.Effect<ReadonlyArray<Uint8Array>>) | undefined,
    ending: Ending,
    clock: Clock.Clock
  ) {
    this.sink = sink
    this.notice = notice
    this.ending = ending
    this.clock = clock
    this.lastActivityAt = clock.currentTimeMillisUnsafe()
    this.delivered = metrics.deliveredCell(ending.context)
  }

  /** The mailbox it takes from (made after the writer: it reports drops to it). */
  attach(box: Mailbox): void {
    this.box = box
  }

  /** Frames to write before anything in the mailbox. */
  setPreamble(frames: ReadonlyArray<Uint8Array>): void {
    this.preamble = frames
  }

  /**
   * Starts writing, in the connection's fiber: the preamble and then whatever
   * comes, at once where the sink takes it, otherwise through the fiber
   * (forked into `scope` for a writer that keeps it).
   */
  start(scope: Scope.Scope): Effect.Effect<void> {
    if (this.sink.tryWrite === undefined) {
      return Effect.map(forkLabelled(this.loop(undefined), scope, this.label()), (fiber) => {
        this.fiber = fiber
        this.ending.track(fiber)
      })
    }
    return Effect.sync(() => {
      if (!this.writePreambleNow()) return this.startFiber(undefined)
      this.box.park()
      this.wake()
    })
  }

  recordDrop(): void {
    this.ending.dropped++
    if (this.notice !== undefined) this.missed++
    const overflow = this.box.overflow
    if (overflow !== "suspend") dropMetrics[overflow].updateUnsafe(1, this.ending.context)
  }

  /** At the end: the events it held and never wrote. */
  unwritten(): number {
    const n = this.inFlight + this.preamble.length - this.preambleTaken
    this.inFlight = 0
    this.preambleTaken = this.preamble.length
    return n
  }

  // ---------------------------------------------------------------------------
  // Without the fiber

  /**
   * The mailbox has something for a parked writer: written here and now
   * when the sink can take it, otherwise handed to the fiber (resumed, or
   * started).
   */
  wake(): void {
    while (this.fiber === undefined || this.resume !== undefined) {
      const take = this.box.takeNow()
      if (take === undefined) return
      if (take._tag === "Frames" && this.writeNow(take)) {
        this.box.recycle(take)
        continue // an end, or offers released by the take, may be waiting behind it
      }
      if (take._tag === "Shutdown" && this.fiber === undefined) return this.box.unpark() // ended elsewhere
      this.box.unpark()
      const resume = this.resume
      if (resume === undefined) return this.startFiber(take)
      this.resume = undefined
      return resume(take)
    }
  }

  writeThrough(frames: ReadonlyArray<Uint8Array>, from: number, whole: Burst | undefined): boolean {
    if (!this.canWriteNow()) return false
    const taken = whole !== undefined ? whole : from === 0 ? frames : frames.slice(from)
    const chunk = chunkOf(taken, whole !== undefined)
    if (!this.sink.tryWrite!(chunk)) return false
    this.wrote(taken.length, chunk.byteLength)
    return true
  }

  private canWriteNow(): boolean {
    return this.sink.tryWrite !== undefined && (this.fiber === undefined || this.resume !== undefined) &&
      !this.ending.settled && this.missed === 0 && this.preambleTaken === this.preamble.length
  }

  // A write without the fiber: `false`, having written nothing, when it must wait.
  private writeNow(take: Taken): boolean {
    if (this.sink.tryWrite === undefined || this.ending.settled || this.missed !== 0) return false
    const chunk = chunkOf(take.frames, take.burst)
    if (!this.sink.tryWrite(chunk)) return false
    this.wrote(take.events, chunk.byteLength)
    return true
  }

  // The preamble's next batch (at most `capacity` frames), not yet taken.
  private preambleBatch(): ReadonlyArray<Uint8Array> | undefined {
    if (this.preambleTaken < this.preamble.length) {
      return this.preamble.slice(this.preambleTaken, this.preambleTaken + this.box.capacity)
    }
    this.preamble = noFrames
    this.preambleTaken = 0
    return undefined
  }

  // The preamble, in batches: `true` once all are written.
  private writePreambleNow(): boolean {
    for (let batch = this.preambleBatch(); batch !== undefined; batch = this.preambleBatch()) {
      const chunk = chunkOf(batch, false)
      if (!this.sink.tryWrite!(chunk)) return false
      this.preambleTaken += batch.length
      this.wrote(batch.length, chunk.byteLength)
    }
    return true
  }

  private wrote(events: number, bytes: number) {
    this.lastActivityAt = this.clock.currentTimeMillisUnsafe()
    this.count(events, bytes)
  }

  // ---------------------------------------------------------------------------
  // The fiber

  private label(): string {
    return `sluice/connection/${this.ending.id}/writer`
  }

  // Started outside any fiber (a hub's fan-out, a socket's callback): a root
  // fiber of the connection, ended with it.
  private startFiber(first: Take | undefined): void {
    const fiber = Effect.runForkWith(Context.add(this.ending.context, FiberLabel, this.label()))(this.loop(first))
    if (fiber.pollUnsafe() === undefined) {
      this.fiber = fiber
      this.ending.track(fiber)
      fiber.addObserver(() => {
        if (this.fiber === fiber) this.fiber = undefined
      })
    }
  }

  private loop(first: Take | undefined): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      for (let batch = this.preambleBatch(); batch !== undefined; batch = this.preambleBatch()) {
        this.preambleTaken += batch.length
        const result = yield* Effect.exit(this.write(batch, false, batch.length))
        if (Exit.isFailure(result)) return yield* this.writeFailed(result.cause)
      }
      let take = first
      while (true) {
        if (take === undefined) {
          take = this.box.takeNow()
          if (take === undefined) {
            // A writer with `tryWrite` needs no fiber while it waits.
            if (this.sink.tryWrite !== undefined) return this.idle()
            take = yield* (this.waitForTake ??= this.makeWait())
          }
        }
        if (take._tag === "Frames") {
          const frames = this.missed === 0 ? take.frames : yield* this.withNotice(take.frames)
          const result = yield* Effect.exit(
            this.write(frames, take.burst && frames === take.frames, take.events + frames.length - take.frames.length)
          )
          if (Exit.isFailure(result)) return yield* this.writeFailed(result.cause)
          this.box.recycle(take)
          take = undefined
          continue
        }
        // Ended by the connection elsewhere: nothing left to do.
        if (take._tag === "Shutdown") return yield* this.ending.settle(interrupted)
        const { ended, frames } = take.end
        if (frames.length > 0) {
          const result = yield* Effect.exit(this.write(frames, false, frames.length))
          if (Exit.isFailure(result)) {
            const error = Cause.findErrorOption(result.cause)
            if (error._tag === "Some") return yield* this.clientGone(error.value)
          }
        }
        return yield* this.ending.settle(ended)
      }
    }).pipe(Effect.onInterrupt(() => this.ending.settle(interrupted)))
  }

  // The fiber ends; the mailbox wakes the writer without it from now on.
  private idle(): void {
    this.fiber = undefined
    this.box.park()
  }

  // The fiber waits on the mailbox (a writer that keeps its fiber).
  private makeWait(): Effect.Effect<Take> {
    return Effect.callback<Take>((resume) => {
      const now = this.box.takeNow()
      if (now !== undefined) return resume(Effect.succeed(now))
      this.resume = (take) => resume(Effect.succeed(take))
      this.box.park(Fiber.getCurrent()?.currentDispatcher)
      return Effect.sync(() => {
        this.resume = undefined
        this.box.unpark()
      })
    })
  }

  private write(frames: ReadonlyArray<Uint8Array>, burst: boolean, events: number): Effect.Effect<void, WriteError> {
    const chunk = chunkOf(frames, burst)
    this.inFlight = events
    this.writing = true
    this.writeStartedAt = this.clock.currentTimeMillisUnsafe()
    return Effect.tap(this.sink(chunk), () => {
      this.writing = false
      this.lastActivityAt = this.clock.currentTimeMillisUnsafe()
      this.count(this.inFlight, chunk.byteLength)
      this.inFlight = 0
      return Effect.void
    })
  }

  private count(events: number, bytes: number) {
    const ending = this.ending
    ending.delivered += events
    ending.writes++
    ending.bytes += bytes
    this.delivered.count += events
  }

  private withNotice(batch: ReadonlyArray<Uint8Array>): Effect.Effect<ReadonlyArray<Uint8Array>> {
    const count = this.missed
    this.missed = 0
    return Effect.map(this.notice!(count), (notice) =>
      notice.length === 0
        ? batch
        : this.box.overflow === "sliding"
        ? [...notice, ...batch]
        : [...batch, ...notice])
  }

  private clientGone(error: WriteError): Effect.Effect<void> {
    return this.ending.settle(clientGone(error))
  }

  private writeFailed(cause: Cause.Cause<WriteError>): Effect.Effect<void> {
    const error = Cause.findErrorOption(cause)
    return error._tag === "Some"
      ? this.clientGone(error.value)
      : this.ending.settle(failed(cause))
  }
}
