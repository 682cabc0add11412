/**
 * A connection's writer: takes everything waiting in the mailbox and writes
 * it to the sink as one chunk, in order, after the preamble.
 *
 * It decides how to write. When its sink can take a chunk at once
 * (`Sink.tryWrite`), the writer writes in the stack of whoever woke it (a
 * hub ending a burst, the scheduler) and stays parked: a broadcast costs no
 * fiber wake-up per subscriber. Anything else (a pending drop notice, a
 * transport that pushes back, the end) resumes its fiber, which writes with
 * the effectful sink and waits for it.
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
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as Connection from "../../Connection.ts"
import type { Sink, WriteError } from "../../Sink.ts"
import { chunkOf, type Taken } from "../burst.ts"
import * as metrics from "../metrics.ts"
import type { Activity } from "./deadlines.ts"
import type { Mailbox, Take } from "./mailbox.ts"
import { clientGone, type Ending, failed, interrupted } from "./outcome.ts"

const dropMetrics = {
  sliding: Metric.withAttributes(metrics.eventsDropped, { reason: "sliding" }),
  dropping: Metric.withAttributes(metrics.eventsDropped, { reason: "dropping" })
} as const

/** @internal */
export class Writer implements Activity {
  writing = false
  writeStartedAt = 0
  lastActivityAt: number
  // Events in the write under way: delivered only when it completes.
  private inFlight = 0
  // Frames written before the mailbox, and how many of them were taken.
  private preamble: ReadonlyArray<Uint8Array> = []
  private preambleTaken = 0
  // Drops not yet announced by a notice.
  private missed = 0
  // The parked fiber's resumption (set while it waits on the mailbox).
  private resume: ((take: Take) => void) | undefined = undefined
  private box!: Mailbox
  private readonly delivered: { count: number }
  private readonly tryWrite: ((chunk: Uint8Array) => boolean) | undefined
  private readonly dropMetric: Metric.Metric<number, unknown> | undefined
  private readonly sink: Sink
  private readonly capacity: number
  private readonly overflow: Connection.Strategy
  private readonly notice: ((missed: number) => Effect.Effect<ReadonlyArray<Uint8Array>>) | undefined
  private readonly ending: Ending
  private readonly clock: Clock.Clock
  private readonly context: Context.Context<never>

  /** @param notice the drop notice for `missed` events, encoded (none: drops are only counted). */
  constructor(
    sink: Sink,
    capacity: number,
    overflow: Connection.Strategy,
    notice: ((missed: number) => Effect.Effect<ReadonlyArray<Uint8Array>>) | undefined,
    ending: Ending,
    clock: Clock.Clock,
    context: Context.Context<never>
  ) {
    this.sink = sink
    this.capacity = capacity
    this.overflow = overflow
    this.notice = notice
    this.ending = ending
    this.clock = clock
    this.context = context
    this.lastActivityAt = clock.currentTimeMillisUnsafe()
    this.delivered = metrics.deliveredCell(context)
    this.tryWrite = sink.tryWrite
    this.dropMetric = overflow === "suspend" ? undefined : dropMetrics[overflow]
  }

  /** The mailbox it takes from (made after the writer: it reports drops to it). */
  attach(box: Mailbox): void {
    this.box = box
  }

  /** Frames to write before anything in the mailbox. */
  setPreamble(frames: ReadonlyArray<Uint8Array>): void {
    this.preamble = frames
  }

  /** The mailbox dropped an event under `sliding` or `dropping`. */
  readonly recordDrop = (): void => {
    this.ending.stats.dropped++
    if (this.notice !== undefined) this.missed++
    this.dropMetric?.updateUnsafe(1, this.context)
  }

  /** At the end: the events it held and never wrote. */
  unwritten(): number {
    const n = this.inFlight + this.preamble.length - this.preambleTaken
    this.inFlight = 0
    this.preambleTaken = this.preamble.length
    return n
  }

  /** The writer fiber. */
  readonly run: Effect.Effect<void> = Effect.suspend(() => this.loop).pipe(
    Effect.onInterrupt(() => this.ending.settle(interrupted))
  )

  private get loop(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      while (this.preambleTaken < this.preamble.length) {
        const batch = this.preamble.slice(this.preambleTaken, this.preambleTaken + this.capacity)
        this.preambleTaken += batch.length
        const result = yield* Effect.exit(this.write(batch, false, batch.length))
        if (Exit.isFailure(result)) return yield* this.writeFailed(result.cause)
      }
      while (true) {
        const take = yield* this.next
        if (take._tag === "Frames") {
          const frames = this.missed === 0 ? take.frames : yield* this.withNotice(take.frames)
          const result = yield* Effect.exit(
            this.write(frames, take.burst && frames === take.frames, take.events + frames.length - take.frames.length)
          )
          if (Exit.isFailure(result)) return yield* this.writeFailed(result.cause)
          this.box.recycle(take)
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
    })
  }

  // What the mailbox has; the fiber parks while there is nothing.
  private readonly next: Effect.Effect<Take> = Effect.callback<Take>((resume) => {
    const now = this.box.takeNow()
    if (now !== undefined) return resume(Effect.succeed(now))
    this.resume = (take) => resume(Effect.succeed(take))
    this.box.park(this.wake)
    return Effect.sync(() => {
      this.resume = undefined
      this.box.unpark()
    })
  })

  // The mailbox has something while the fiber is parked: written here and
  // now when the sink can take it, otherwise handed to the fiber.
  private readonly wake = (): void => {
    while (this.resume !== undefined) {
      const take = this.box.takeNow()
      if (take === undefined) return
      if (take._tag === "Frames" && this.writeNow(take)) {
        this.box.recycle(take)
        continue // an end, or offers released by the take, may be waiting behind it
      }
      const resume = this.resume
      this.resume = undefined
      this.box.unpark()
      return resume(take)
    }
  }

  // A write without the fiber: `false`, having written nothing, when it must wait.
  private writeNow(take: Taken): boolean {
    if (this.tryWrite === undefined || this.ending.settled || this.missed !== 0) return false
    const chunk = chunkOf(take.frames, take.burst)
    if (!this.tryWrite(chunk)) return false
    this.lastActivityAt = this.clock.currentTimeMillisUnsafe()
    this.count(take.events, chunk.byteLength)
    return true
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
    const stats = this.ending.stats
    stats.delivered += events
    stats.writes++
    stats.bytes += bytes
    this.delivered.count += events
  }

  private withNotice(batch: ReadonlyArray<Uint8Array>): Effect.Effect<ReadonlyArray<Uint8Array>> {
    const count = this.missed
    this.missed = 0
    return Effect.map(this.notice!(count), (notice) =>
      notice.length === 0
        ? batch
        : this.overflow === "sliding"
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
