/**
 * A connection's mailbox: the bounded queue between whoever feeds the
 * connection (its producer, a hub, the registry) and its writer.
 *
 * Effect's `Queue` is the model (bounded, suspending offers accepted in FIFO
 * order, an end marker delivered after everything accepted before it,
 * wake-ups through the scheduler so that a burst of offers costs one
 * wake-up), specialised for the hot path of a broadcast: an offer is an
 * array push, a take hands the whole waiting array over (the writer always
 * takes everything), a hub's burst is shared rather than copied (see
 * `burst`), capacity counts events (heartbeats never fill it), and the
 * dropping strategies (`sliding`, `dropping`) act on events in place.
 *
 * The writer parks on the mailbox; the mailbox wakes it when there is
 * something to take (through the scheduler, or at once when a feeder ends a
 * burst). What to do then, write at once or hand it to its fiber, is the
 * writer's business.
 *
 * Waiting offers carry their frame and are accepted in order by the take that
 * frees room: a queue of offers, not a count of permits, so they stay a list
 * here. A feeder waiting for room (`awaitRoom`) waits on an effect `Latch`,
 * open while there is room.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import type { SchedulerDispatcher } from "effect/Scheduler"
import type * as Connection from "../../Connection.ts"
import { type Burst, Frames, type Taken } from "../burst.ts"
import type { Ended } from "./outcome.ts"
import type { Parked } from "./writer.ts"

/** How a mailbox ends: after everything waiting, these frames, then this outcome. @internal */
export interface End {
  readonly ended: Ended
  readonly frames: ReadonlyArray<Uint8Array>
}

/** What a take returns: waiting frames, or why there are none. @internal */
export type Take =
  | Taken
  | { readonly _tag: "End"; readonly end: End }
  | { readonly _tag: "Shutdown" }

interface WaitingOffer {
  readonly bytes: Uint8Array
  readonly resume: (accepted: boolean) => void
}

const shutdownTake: Take = { _tag: "Shutdown" }

/** @internal */
export class Mailbox {
  readonly capacity: number
  readonly overflow: Connection.Strategy
  private readonly heartbeat: Uint8Array
  private readonly writer: Parked
  private readonly frames = new Frames()
  private events = 0
  private state: "open" | "closing" | "done" = "open"
  private end: End | undefined = undefined
  // Made on first use: most mailboxes never make anyone wait.
  private offers: Array<WaitingOffer> | undefined = undefined
  private room: Latch.Latch | undefined = undefined
  // Whether the writer is parked, and the dispatcher of the fiber it parked in (if any).
  private parked = false
  private dispatcher: SchedulerDispatcher | undefined = undefined
  private wakeScheduled = false
  private scheduledWake: (() => void) | undefined = undefined

  constructor(capacity: number, overflow: Connection.Strategy, heartbeat: Uint8Array, writer: Parked) {
    this.capacity = capacity
    this.overflow = overflow
    this.heartbeat = heartbeat
    this.writer = writer
  }

  /** Events waiting (heartbeats excluded). */
  size(): number {
    return this.state === "done" ? 0 : this.events
  }

  accepting(): boolean {
    return this.state === "open"
  }

  // ---------------------------------------------------------------------------
  // Offering

  /** Accepts an event if it fits (or by dropping, under a dropping overflow). */
  offerUnsafe(bytes: Uint8Array): boolean {
    if (this.state !== "open") return false
    if (this.events >= this.capacity) {
      if (this.overflow === "suspend") return false
      this.writer.recordDrop()
      if (this.overflow === "dropping") return false
      this.dropOldest()
    }
    this.frames.pushOne(bytes)
    this.events++
    if (!this.wakeScheduled) this.signal()
    return true
  }

  /**
   * Offers `frames[from..]` in order, as `offerUnsafe` would one by one, with
   * one capacity check and one wake-up when they all fit. A parked writer is
   * served at once, in the caller's stack: the caller is a feeder ending a
   * burst, outside any fiber's run, and this saves a scheduler task per
   * subscriber. More frames than the mailbox holds still go at once when
   * nothing waits and the writer can write them straight to its sink:
   * capacity bounds what waits, not what the transport takes. Returns the
   * index of the first frame refused (`frames.length` when none was).
   */
  offerManyUnsafe(frames: ReadonlyArray<Uint8Array>, from: number): number {
    return this.offerRun(frames, from, undefined)
  }

  /** {@link offerManyUnsafe} for a burst: offered whole to an empty mailbox, it is shared, not copied. */
  offerBurstUnsafe(burst: Burst, from: number): number {
    return this.offerRun(burst, from, from === 0 ? burst : undefined)
  }

  private offerRun(frames: ReadonlyArray<Uint8Array>, from: number, whole: Burst | undefined): number {
    const n = frames.length - from
    if (this.state === "open" && (this.offers === undefined || this.offers.length === 0)) {
      if (this.events + n <= this.capacity) {
        if (whole !== undefined) this.frames.share(whole)
        else this.frames.push(frames, from)
        this.events += n
        this.serveNow()
        return frames.length
      }
      if (this.parked && this.frames.length === 0 && this.writer.writeThrough(frames, from, whole)) {
        return frames.length
      }
    }
    for (let i = from; i < frames.length; i++) {
      if (!this.offerUnsafe(frames[i]!)) {
        this.serveNow()
        return i
      }
    }
    this.serveNow()
    return frames.length
  }

  /** A heartbeat is queued only when nothing else is waiting: any write would do. */
  offerHeartbeatUnsafe(): boolean {
    if (this.state !== "open" || this.frames.length > 0) return false
    this.frames.pushOne(this.heartbeat)
    this.signal()
    return true
  }

  /**
   * Accepts an event, waiting for room under `suspend` (offers that wait are
   * accepted in the order they started waiting). `false` once the mailbox no
   * longer accepts.
   */
  offer(bytes: Uint8Array): Effect.Effect<boolean> {
    return Effect.callback<boolean>((resume) => {
      if ((this.offers === undefined || this.offers.length === 0) && this.offerUnsafe(bytes)) {
        return resume(Effect.succeed(true))
      }
      if (this.state !== "open" || this.overflow !== "suspend") return resume(Effect.succeed(this.state === "open"))
      const entry: WaitingOffer = { bytes, resume: (accepted) => resume(Effect.succeed(accepted)) }
      ;(this.offers ??= []).push(entry)
      return Effect.sync(() => {
        const i = this.offers?.indexOf(entry) ?? -1
        if (i !== -1) this.offers!.splice(i, 1)
      })
    })
  }

  /** Waits until an event fits: `true`, or `false` once the mailbox no longer accepts. */
  awaitRoom(): Effect.Effect<boolean> {
    return Effect.suspend(() => {
      if (this.state !== "open") return Effect.succeed(false)
      if (this.events < this.capacity) return Effect.succeed(true)
      const room = (this.room ??= Latch.makeUnsafe(false))
      room.closeUnsafe()
      return Effect.flatMap(room.await, () => this.awaitRoom())
    })
  }

  // The oldest event leaves (heartbeats in front of it go too: they are moot).
  private dropOldest() {
    let i = 0
    while (i < this.frames.length && this.frames.at(i) === this.heartbeat) i++
    this.frames.dropFirst(i + 1)
    this.events--
  }

  // ---------------------------------------------------------------------------
  // Taking (the writer)

  /** Everything waiting, the end, or `undefined` when there is nothing yet. */
  takeNow(): Take | undefined {
    if (this.state === "done") return shutdownTake
    if (this.frames.length > 0) {
      const taken = this.frames.takeAll(this.events)
      this.events = 0
      this.releaseOffers()
      this.room?.openUnsafe()
      return taken
    }
    if (this.state === "closing") {
      this.state = "done"
      return { _tag: "End", end: this.end! }
    }
    return undefined
  }

  /** The writer is done with what it took. */
  recycle(taken: Taken): void {
    this.frames.recycle(taken)
  }

  /**
   * The writer waits: it is woken (`Parked.wake`) when there is something to
   * take, through `dispatcher` (the one of the fiber it parks in, if it parks
   * in one) or else the one of the fiber that offers (a microtask outside
   * any fiber); at once when a feeder ends a burst, and when the mailbox
   * shuts down.
   */
  park(dispatcher?: SchedulerDispatcher): void {
    this.parked = true
    this.dispatcher = dispatcher
  }

  unpark(): void {
    this.parked = false
  }

  // Waiting offers move in as room frees, oldest first; each resumes at once.
  private releaseOffers() {
    const offers = this.offers
    if (offers === undefined) return
    while (offers.length > 0 && this.events < this.capacity && this.state === "open") {
      const entry = offers.shift()!
      this.frames.pushOne(entry.bytes)
      this.events++
      entry.resume(true)
    }
  }

  // One wake-up per burst: the first offer schedules it, the writer then takes
  // everything offered meanwhile.
  private signal() {
    if (!this.parked || this.wakeScheduled) return
    this.wakeScheduled = true
    const wake = (this.scheduledWake ??= () => {
      this.wakeScheduled = false
      if (this.parked) this.writer.wake()
    })
    const dispatcher = this.dispatcher ?? Fiber.getCurrent()?.currentDispatcher
    if (dispatcher !== undefined) dispatcher.scheduleTask(wake, 0)
    else queueMicrotask(wake)
  }

  private serveNow() {
    if (this.parked && this.frames.length > 0) {
      this.wakeScheduled = false
      this.writer.wake()
    }
  }

  // ---------------------------------------------------------------------------
  // Ending

  /**
   * Stops accepting; the writer gets what is waiting, then `end`. Offers that
   * were waiting are refused. `false` if it had already stopped accepting.
   */
  endUnsafe(end: End): boolean {
    if (this.state !== "open") return false
    this.state = "closing"
    this.end = end
    this.refuseOffers()
    this.room?.openUnsafe()
    this.signal()
    return true
  }

  /**
   * Discards everything and refuses all offers from now on. Returns the number
   * of events discarded. Idempotent (later calls discard nothing).
   */
  shutdownUnsafe(): number {
    if (this.state === "done") return 0
    const discarded = this.events
    this.state = "done"
    this.frames.clear()
    this.events = 0
    this.refuseOffers()
    this.room?.openUnsafe()
    if (this.parked) this.writer.wake()
    return discarded
  }

  private refuseOffers() {
    const offers = this.offers
    if (offers === undefined || offers.length === 0) return
    this.offers = undefined
    for (const entry of offers) entry.resume(false)
  }
}
