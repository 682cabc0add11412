/**
 * One topic's live tail on one node: the bursts the node's Pub/Sub
 * subscription brings, turned into `Log.Change`s in sequence order, each
 * entry once, with holes filled from the stream.
 *
 * ```text
 * Pub/Sub burst ─▶ receive ─┬─ next in line ───────────────▶ Appended ─▶ listeners (the hub)
 *                           ├─ already seen ───────────────▶ dropped
 *                           └─ a jump, or a check says behind ─▶ fill: read the stream (XRANGE)
 *                                 meanwhile: bursts buffered (bounded), then replayed through receive
 * ```
 *
 * What it guarantees:
 * - **In order, once**: listeners get `Appended` changes whose sequence
 *   numbers continue exactly where the previous one ended.
 * - **Holes are filled before anything newer**: a jump starts a fill from the
 *   stream; newer bursts wait in a bounded buffer. If the buffer overflows it
 *   is dropped (memory stays bounded) and the fill reads on to the stream's
 *   end instead.
 * - **Only what the record lost is reported**: entries trimmed away before
 *   the fill could read them are a `Missed` change; a lost stream (new epoch)
 *   is `EpochChanged`, then the new epoch's entries from 1.
 * - **Retired epochs stay retired**: a late burst of an epoch the tail has
 *   left is dropped, never taken for a change back.
 *
 * @internal
 */
import { Log } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { encodeAll, texts } from "./frames.ts"

/** A burst as Pub/Sub brings it. @internal */
export interface Burst {
  readonly epoch: string
  readonly first: number
  readonly fields: ReadonlyArray<string>
  /** Publisher ids as stored (see `encodeCallerId`), when any. */
  readonly callerIds: ReadonlyArray<string> | undefined
}

/** One entry read from the stream. @internal */
export interface StoredEntry {
  readonly seq: number
  /** As stored (see `encodeCallerId`). */
  readonly callerId: string
  readonly fields: string
}

/** What a read of the stream found. @internal */
export interface Range {
  readonly epoch: string
  readonly lastSeq: number
  /** First retained sequence number (`lastSeq + 1` when none is). */
  readonly firstRetained: number
  readonly entries: ReadonlyArray<StoredEntry>
}

/** What a tail needs from the node. @internal */
export interface Deps {
  /** Reads up to `count` entries after `after` (0 entries: the position only). */
  readonly read: (after: number, count: number) => Effect.Effect<Range, Log.LogError>
  /** Forks a fill into the node's fibers (interrupted when the node closes). */
  readonly run: (effect: Effect.Effect<void>) => void
  /** Most events buffered while a fill runs. */
  readonly maxBuffered: number
  /** Entries per read while filling. */
  readonly chunk: number
  /** Pause between attempts while the stream cannot be read. */
  readonly retry: Schedule.Schedule<unknown>
  /** Counts what happened (metrics). */
  readonly count: (what: "fill" | "missed" | "epoch") => void
}

type State = "opening" | "live" | "filling"

/** @internal */
export class Tail {
  epoch = ""
  lastSeq = 0
  readonly listeners = new Set<(change: Log.Change) => void>()
  /** Fills since the tail opened (for tests and stats). */
  fills = 0
  private state: State = "opening"
  private buffered: Array<Burst> = []
  private bufferedEvents = 0
  private readonly retired = new Set<string>()
  /** What a position check saw the record reach, for the next check. */
  private suspect = 0
  private readonly deps: Deps

  constructor(deps: Deps) {
    this.deps = deps
  }

  /** Starts at the record's position (from the node's first read). Buffered bursts are replayed. */
  open(range: Range): void {
    this.epoch = range.epoch
    this.lastSeq = range.lastSeq
    this.state = "live"
    this.drain()
  }

  /** A burst from Pub/Sub. */
  receive(burst: Burst): void {
    if (this.state !== "live") this.buffer(burst)
    else this.deliver(burst)
  }

  /**
   * The answer of a periodic position check. A tail that stays behind what
   * the previous check saw (its Pub/Sub missed something), or that sees a new
   * epoch, fills from the stream. `now` skips the grace round (after the
   * subscription came back).
   */
  checked(range: Range, now: boolean): void {
    if (this.state !== "live") return
    if (range.epoch !== this.epoch) {
      if (!this.retired.has(range.epoch)) this.fill()
      return
    }
    const behind = now ? range.lastSeq > this.lastSeq : this.suspect > this.lastSeq
    this.suspect = range.lastSeq
    if (behind) this.fill()
  }

  private emit(change: Log.Change): void {
    for (const listener of this.listeners) listener(change)
  }

  private buffer(burst: Burst): void {
    this.buffered.push(burst)
    this.bufferedEvents += burst.fields.length
    // Bounded: the fill reads to the stream's end anyway.
    if (this.bufferedEvents > this.deps.maxBuffered) {
      this.buffered = []
      this.bufferedEvents = 0
    }
  }

  private changeEpoch(epoch: string): void {
    this.deps.count("epoch")
    this.retired.add(this.epoch)
    this.epoch = epoch
    this.lastSeq = 0
    this.suspect = 0
    this.emit(Log.epochChanged(epoch, 0))
  }

  private deliver(burst: Burst): void {
    if (burst.epoch !== this.epoch) {
      if (this.retired.has(burst.epoch)) return
      this.changeEpoch(burst.epoch)
    }
    const last = burst.first + burst.fields.length - 1
    if (last <= this.lastSeq) return
    if (burst.first > this.lastSeq + 1) {
      this.buffer(burst)
      this.fill()
      return
    }
    const skip = this.lastSeq + 1 - burst.first
    const fields = skip > 0 ? burst.fields.slice(skip) : burst.fields
    const callerIds = skip > 0 ? burst.callerIds?.slice(skip) : burst.callerIds
    const frames = encodeAll(texts(this.epoch, this.lastSeq + 1, fields, callerIds))
    const first = this.lastSeq + 1
    this.lastSeq = last
    this.emit(Log.appended(this.epoch, first, frames))
  }

  private drain(): void {
    const pending = this.buffered
    this.buffered = []
    this.bufferedEvents = 0
    for (const burst of pending) {
      if (this.state !== "live") this.buffer(burst)
      else this.deliver(burst)
    }
  }

  /** Applies one read; `true` when the tail has reached the record's end. */
  private apply(range: Range): boolean {
    if (range.epoch !== this.epoch) {
      if (this.retired.has(range.epoch)) return true
      this.changeEpoch(range.epoch)
      // Read after the old epoch's position: read the new one from its start.
      return false
    }
    const entries = range.entries.filter((e) => e.seq > this.lastSeq)
    const next = Math.min(range.firstRetained, entries[0]?.seq ?? Infinity)
    if (next > this.lastSeq + 1 && next <= range.lastSeq + 1) {
      // Trimmed before this node read it: the record no longer has the hole.
      this.deps.count("missed")
      this.emit(Log.missed(this.epoch, this.lastSeq))
      this.lastSeq = next - 1
    }
    if (entries.length > 0) {
      const first = entries[0]!.seq
      const frames = texts(this.epoch, first, entries.map((e) => e.fields), entries.map((e) => e.callerId))
      this.lastSeq = first + entries.length - 1
      this.emit(Log.appended(this.epoch, first, encodeAll(frames)))
    }
    return this.lastSeq >= range.lastSeq || range.entries.length === 0
  }

  /** Reads the stream until the tail has caught up, then replays what was buffered meanwhile. */
  private fill(): void {
    if (this.state === "filling") return
    this.state = "filling"
    this.fills++
    this.deps.count("fill")
    const step: Effect.Effect<void> = Effect.suspend(() =>
      this.deps.read(this.lastSeq, this.deps.chunk).pipe(
        Effect.retry(this.deps.retry),
        // Given up (the schedule ended): the next check or burst starts anew.
        Effect.matchEffect({
          onFailure: () => Effect.void,
          onSuccess: (range) => this.apply(range) ? Effect.void : step
        })
      )
    )
    this.deps.run(
      step.pipe(
        Effect.ensuring(Effect.sync(() => {
          this.state = "live"
          this.drain()
        }))
      )
    )
  }
}
