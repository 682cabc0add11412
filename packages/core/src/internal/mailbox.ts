import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type { SchedulerDispatcher } from "effect/Scheduler"
import type * as Connection from "../Connection.ts"

/**
 * A connection's mailbox: the bounded queue between its producers and its
 * writer.
 *
 * Effect's `Queue` is the model (bounded, suspending offers released in FIFO
 * order, an end marker delivered after everything accepted before it, wake-ups
 * through the scheduler so that a burst of offers costs one wake-up), but this
 * one is specialised for the hot path of a broadcast: an offer is an array
 * push, a take swaps the whole array out (the writer always takes everything),
 * capacity counts events (heartbeats never fill it), and the dropping
 * overflows act on events in place.
 *
 * @internal
 */
export interface End {
  readonly reason: "completed" | "failed" | "closed" | "interrupted"
  readonly frames: ReadonlyArray<Uint8Array>
  readonly cause?: import("effect/Cause").Cause<unknown>
  readonly closeReason?: string
}

/** What a take returns: pending frames, or why there are none. @internal */
export type Taken =
  | { readonly _tag: "Frames"; readonly frames: Array<Uint8Array>; readonly events: number }
  | { readonly _tag: "End"; readonly end: End }
  | { readonly _tag: "Shutdown" }

interface WaitingOffer {
  readonly bytes: Uint8Array
  readonly resume: (accepted: boolean) => void
}

const shutdownTaken: Taken = { _tag: "Shutdown" }

/** @internal */
export class Mailbox {
  readonly capacity: number
  readonly overflow: Connection.Overflow
  private readonly heartbeat: Uint8Array
  private readonly onDrop: () => void
  private frames: Array<Uint8Array> = []
  // The array the writer last took, handed back once written: a broadcast
  // fills the same two arrays over and over instead of allocating per burst.
  private spare: Array<Uint8Array> | undefined = undefined
  // When the mailbox was empty and a feeder offered a whole frozen burst,
  // `frames` is the feeder's own array, shared by every subscriber of that
  // burst: no per-subscriber copy, and the writers' concatenation is found by
  // identity. Copied before any change.
  private shared: ReadonlyArray<Uint8Array> | undefined = undefined
  // A shared array handed to the writer: never recycled.
  private handedShared: ReadonlyArray<Uint8Array> | undefined = undefined
  private events = 0
  private heartbeats = 0
  private state: "open" | "closing" | "done" = "open"
  private end: End | undefined = undefined
  private readonly offers: Array<WaitingOffer> = []
  private taker: ((taken: Taken) => void) | undefined = undefined
  private takerDispatcher: SchedulerDispatcher | undefined = undefined
  private wakeScheduled = false
  // Made on first use: most mailboxes never make anyone wait.
  private roomWaiters: Set<(room: boolean) => void> | undefined = undefined
  /**
   * Set by the connection when its sink can write synchronously: a wake-up
   * first offers the frames to it, and resumes the writer only if it
   * declines (returns `false`, having written nothing).
   */
  fastPath: ((frames: Array<Uint8Array>, events: number) => boolean) | undefined = undefined

  constructor(capacity: number, overflow: Connection.Overflow, heartbeat: Uint8Array, onDrop: () => void) {
    this.capacity = capacity
    this.overflow = overflow
    this.heartbeat = heartbeat
    this.onDrop = onDrop
  }

  /** Events waiting (heartbeats excluded). */
  size(): number {
    return this.state === "done" ? 0 : this.events
  }

  accepting(): boolean {
    return this.state === "open"
  }

  // ---------------------------------------------------------------------------
  // offering

  /** Accepts an event if it fits (or by dropping, under a dropping overflow). */
  offerUnsafe(bytes: Uint8Array): boolean {
    if (this.state !== "open") return false
    if (this.events >= this.capacity) {
      if (this.overflow === "suspend") return false
      this.onDrop()
      if (this.overflow === "drop-newest") return false
      this.dropOldest()
    }
    this.push(bytes)
    return true
  }

  /**
   * Offers `frames[from..]` in order, as `offerUnsafe` would one by one, with
   * one capacity check and one wake-up when they all fit. Returns the index
   * of the first frame refused (`frames.length` when none was).
   */
  offerManyUnsafe(frames: ReadonlyArray<Uint8Array>, from: number, frozen: boolean): number {
    const n = frames.length - from
    if (this.state === "open" && this.offers.length === 0 && this.events + n <= this.capacity) {
      if (frozen && from === 0 && this.frames.length === 0) {
        this.spare ??= this.frames
        this.frames = frames as Array<Uint8Array>
        this.shared = frames
        this.events = n
        this.flushNow()
        return frames.length
      }
      this.unshare()
      const out = this.frames
      for (let i = from; i < frames.length; i++) out.push(frames[i]!)
      this.events += n
      this.flushNow()
      return frames.length
    }
    for (let i = from; i < frames.length; i++) {
      if (!this.offerUnsafe(frames[i]!)) {
        this.flushNow()
        return i
      }
    }
    this.flushNow()
    return frames.length
  }

  // The caller is a feeder ending a burst (outside any fiber's run): a parked
  // writer is served now instead of through the scheduler, which saves a task
  // per subscriber and the wait for the scheduler's next turn.
  private flushNow() {
    if (this.taker === undefined || this.frames.length === 0) return
    this.wake()
  }

  /** A heartbeat is queued only when nothing else is waiting: any write would do. */
  offerHeartbeatUnsafe(): boolean {
    if (this.state !== "open" || this.frames.length > 0) return false
    this.unshare()
    this.frames.push(this.heartbeat)
    this.heartbeats++
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
      if (this.offers.length === 0 && this.offerUnsafe(bytes)) return resume(Effect.succeed(true))
      if (this.state !== "open" || this.overflow !== "suspend") return resume(Effect.succeed(this.state === "open"))
      const entry: WaitingOffer = { bytes, resume: (accepted) => resume(Effect.succeed(accepted)) }
      this.offers.push(entry)
      return Effect.sync(() => {
        const i = this.offers.indexOf(entry)
        if (i !== -1) this.offers.splice(i, 1)
      })
    })
  }

  /** Waits until an event fits: `true`, or `false` once the mailbox no longer accepts. */
  readonly awaitRoom: Effect.Effect<boolean> = Effect.callback<boolean>((resume) => {
    if (this.state !== "open") return resume(Effect.succeed(false))
    if (this.events < this.capacity) return resume(Effect.succeed(true))
    const waiter = (room: boolean) => resume(Effect.succeed(room))
    ;(this.roomWaiters ??= new Set()).add(waiter)
    return Effect.sync(() => {
      this.roomWaiters?.delete(waiter)
    })
  })

  private unshare() {
    if (this.shared === undefined) return
    this.frames = this.frames.slice()
    this.shared = undefined
  }

  private push(bytes: Uint8Array) {
    this.unshare()
    this.frames.push(bytes)
    this.events++
    if (this.taker !== undefined && !this.wakeScheduled) this.signal()
  }

  /** The writer is done with an array it took: it may be reused. */
  recycle(frames: Array<Uint8Array>) {
    if (frames === this.handedShared) {
      this.handedShared = undefined
      return
    }
    frames.length = 0
    this.spare = frames
  }

  /** Whether `frames` (just taken) is a feeder's shared, immutable array. */
  isShared(frames: ReadonlyArray<Uint8Array>): boolean {
    return frames === this.handedShared
  }

  // The oldest event leaves (heartbeats in front of it go too: they are moot).
  private dropOldest() {
    this.unshare()
    let i = 0
    while (i < this.frames.length && this.frames[i] === this.heartbeat) i++
    this.heartbeats -= i
    this.frames.splice(0, i + 1)
    this.events--
  }

  // ---------------------------------------------------------------------------
  // taking (the writer)

  /** Everything waiting; waits while nothing is. */
  readonly take: Effect.Effect<Taken> = Effect.callback<Taken>((resume) => {
    const now = this.takeNow()
    if (now !== undefined) return resume(Effect.succeed(now))
    this.takerDispatcher = Fiber.getCurrent()?.currentDispatcher
    this.taker = (taken) => resume(Effect.succeed(taken))
    return Effect.sync(() => {
      this.taker = undefined
    })
  })

  private takeNow(): Taken | undefined {
    if (this.state === "done") return shutdownTaken
    if (this.frames.length > 0) {
      const frames = this.frames
      const events = this.events
      this.handedShared = this.shared
      this.shared = undefined
      this.frames = this.spare ?? []
      this.spare = undefined
      this.events = 0
      this.heartbeats = 0
      this.releaseOffers()
      this.wakeRoomWaiters()
      return { _tag: "Frames", frames, events }
    }
    if (this.state === "closing") {
      this.state = "done"
      return { _tag: "End", end: this.end! }
    }
    return undefined
  }

  // Waiting offers move in as room frees, oldest first; each resumes at once.
  private releaseOffers() {
    while (this.offers.length > 0 && this.events < this.capacity && this.state === "open") {
      const entry = this.offers.shift()!
      this.push(entry.bytes)
      entry.resume(true)
    }
  }

  // One wake-up per burst: the first offer schedules it, the writer then takes
  // everything offered meanwhile.
  private signal() {
    if (this.taker === undefined || this.wakeScheduled) return
    this.wakeScheduled = true
    if (this.takerDispatcher !== undefined) this.takerDispatcher.scheduleTask(this.wake, 0)
    else queueMicrotask(this.wake)
  }

  private readonly wake = () => {
    this.wakeScheduled = false
    while (true) {
      const taker = this.taker
      if (taker === undefined) return
      const now = this.takeNow()
      if (now === undefined) return
      // Written without the writer, which stays parked; look again, since an
      // end (or offers released by the take) may be waiting behind it.
      if (now._tag === "Frames" && this.fastPath !== undefined && this.fastPath(now.frames, now.events)) continue
      this.taker = undefined
      taker(now)
      return
    }
  }

  private wakeRoomWaiters() {
    if (this.roomWaiters === undefined || this.roomWaiters.size === 0) return
    const room = this.state === "open"
    if (room && this.events >= this.capacity) return
    const waiters = [...this.roomWaiters]
    this.roomWaiters.clear()
    for (const w of waiters) w(room)
  }

  // ---------------------------------------------------------------------------
  // ending

  /**
   * Stops accepting; the writer gets what is waiting, then `end`. Offers that
   * were waiting are refused. `false` if it had already stopped accepting.
   */
  endUnsafe(end: End): boolean {
    if (this.state !== "open") return false
    this.state = "closing"
    this.end = end
    this.refuseOffers()
    this.wakeRoomWaiters()
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
    this.shared = undefined
    this.frames = []
    this.events = 0
    this.heartbeats = 0
    this.refuseOffers()
    this.wakeRoomWaiters()
    const taker = this.taker
    this.taker = undefined
    taker?.(shutdownTaken)
    return discarded
  }

  private refuseOffers() {
    const offers = this.offers.splice(0)
    for (const entry of offers) entry.resume(false)
  }
}
