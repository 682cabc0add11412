/**
 * The reader: one attached client's cursor over a stream's record.
 *
 * ```text
 * log.read(after pos) ─▶ entries ─▶ marker? ── yes ──▶ end (its frames, then close)
 *        ▲                              └─ no ─▶ mailbox.sendBytes, pos = seq
 *        └── wake (the log's tail moved past pos) ◀── caught up: wait
 * ```
 *
 * The reader keeps a position (the sequence number of the last entry it
 * handed to the connection) and only ever asks the log for what follows it,
 * so it cannot skip or repeat an entry, whatever the timing of the producer's
 * appends, the end, and the attach: the tail is only a wake-up (and, when
 * its frames follow the position, a way to skip a read). It stops at the
 * first end marker. Backpressure is the connection's mailbox: a slow client
 * holds nothing but its position, because the record is kept anyway.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Connection from "../../Connection.ts"
import * as Log from "../../Log.ts"
import { utf8 } from "../bytes.ts"
import * as marker from "./marker.ts"
import { type End, producerLost } from "./model.ts"

/** Where an attached client starts. @internal */
export type Start =
  | { readonly _tag: "FromStart" }
  | { readonly _tag: "Resumed"; readonly lastEventId: string }
  | { readonly _tag: "Gap"; readonly lastEventId: string; readonly reason: Log.NotFoundReason }

/** How a reader ended: at the record's end, or the record could not be read. @internal */
export type Finish = { readonly _tag: "End"; readonly end: End } | { readonly _tag: "Unavailable" }

/** Tail frames kept ahead of a reader that is busy writing (beyond this, it reads). */
const stashLimit = 1024

/** Read attempts in a row that may fail before the reader gives up. */
const readAttempts = 5

/** @internal */
export class Reader {
  private readonly log: Log.Log
  private readonly budget: Log.Budget
  private epoch = ""
  private pos = 0
  private first: ReadonlyArray<Log.Entry> = []
  private stashFirst = 0
  private stash: Array<Uint8Array> = []
  private abandoned: End | undefined = undefined
  private readonly wake: Queue.Queue<void>
  /** `true` while the reader has read everything there is and waits for more. */
  waiting = false

  private constructor(log: Log.Log, budget: Log.Budget, wake: Queue.Queue<void>) {
    this.log = log
    this.budget = budget
    this.wake = wake
  }

  /** A reader of `log` that reads at most `budget` per read. */
  static make(log: Log.Log, budget: Log.Budget): Effect.Effect<Reader> {
    // One pending wake-up is enough: a wake-up only says "read again".
    return Effect.map(Queue.dropping<void>(1), (wake) => new Reader(log, budget, wake))
  }

  /** Follows the log's tail; returns the function that stops. Call before {@link begin}. */
  listen(): () => void {
    return this.log.listen((change) => {
      if (change._tag === "Appended") {
        if (change.epoch !== this.epoch) return this.signal()
        const last = change.firstSeq + change.frames.length - 1
        if (last <= this.pos) return
        this.keep(change.firstSeq, change.frames)
      }
      this.signal()
    })
  }

  /**
   * Ends the reader now with `end`, even though its record has no marker
   * (its coordinator knows the stream is over and nobody will write one).
   */
  abandon(end: End): void {
    this.abandoned ??= end
    this.signal()
  }

  /**
   * Finds where the client starts: after `lastEventId`, or at the beginning
   * (none given, or an id the record cannot resume: a gap).
   */
  begin(lastEventId: string | undefined): Effect.Effect<Start, Log.LogError> {
    if (lastEventId === undefined || lastEventId === "") {
      return Effect.sync(() => {
        this.epoch = this.log.position().epoch
        return { _tag: "FromStart" } as const
      })
    }
    return Effect.map(this.log.read(Log.afterId(lastEventId, this.budget)), (result): Start => {
      this.epoch = result.epoch
      if (result._tag === "NotFound") {
        this.pos = 0
        return { _tag: "Gap", lastEventId, reason: result.reason }
      }
      this.pos = result.entries.length > 0 ? result.entries[0]!.seq - 1 : result.lastSeq
      this.first = result.entries
      return { _tag: "Resumed", lastEventId }
    })
  }

  /** Hands the record to `mailbox` from the start position to the end marker. */
  run(mailbox: Connection.Sender): Effect.Effect<Finish> {
    return Effect.gen({ self: this }, function*() {
      let end = yield* this.deliver(this.first, mailbox)
      this.first = []
      let failures = 0
      while (end === undefined) {
        if (this.abandoned !== undefined) return { _tag: "End", end: this.abandoned } as const
        const stashed = this.takeStash()
        if (stashed.length > 0) {
          end = yield* this.deliver(stashed, mailbox)
          continue
        }
        const read = yield* Effect.result(this.log.read(Log.afterSeq(this.epoch, this.pos, this.budget)))
        if (read._tag === "Failure") {
          if (++failures >= readAttempts) return { _tag: "Unavailable" } as const
          yield* Effect.sleep(100 * 2 ** failures)
          continue
        }
        failures = 0
        const result = read.success
        // The record is gone (a new epoch) or no longer holds what follows:
        // the stream cannot continue, and nothing will come.
        if (result._tag === "NotFound") return { _tag: "End", end: producerLost } as const
        end = yield* this.deliver(result.entries, mailbox)
        if (end === undefined && (result.entries.length === 0 || result.complete)) yield* this.await
      }
      return { _tag: "End", end } as const
    })
  }

  // Writes entries until the marker (returned, not written).
  private deliver(
    entries: ReadonlyArray<Log.Entry | Uint8Array>,
    mailbox: Connection.Sender
  ): Effect.Effect<End | undefined> {
    return Effect.gen({ self: this }, function*() {
      for (let i = 0; i < entries.length; i++) {
        const item = entries[i]!
        const frame = item instanceof Uint8Array ? item : item.frame
        const seq = item instanceof Uint8Array ? this.pos + 1 : item.seq
        if (seq <= this.pos) continue
        if (marker.isMarker(frame)) return marker.decode(frame)
        yield* mailbox.sendBytes(frame)
        this.pos = seq
      }
      return undefined
    })
  }

  // Tail frames that follow the position, if the stash has them.
  private takeStash(): ReadonlyArray<Uint8Array> {
    const n = this.stash.length
    if (n === 0) return []
    const skip = this.pos + 1 - this.stashFirst
    // A hole before the stash: a read fills it first.
    if (skip < 0) return []
    const out = skip >= n ? [] : skip === 0 ? this.stash : this.stash.slice(skip)
    this.stash = []
    return out
  }

  private keep(first: number, frames: ReadonlyArray<Uint8Array>): void {
    const n = this.stash.length
    if (n > 0 && first === this.stashFirst + n && n + frames.length <= stashLimit) {
      for (let i = 0; i < frames.length; i++) this.stash.push(frames[i]!)
    } else if (frames.length <= stashLimit) {
      // Not contiguous with what was kept: what lies between is read.
      this.stashFirst = first
      this.stash = frames.slice()
    } else {
      this.stash = []
    }
  }

  private signal(): void {
    Queue.offerUnsafe(this.wake, undefined)
  }

  private readonly await: Effect.Effect<void> = Effect.suspend(() => {
    this.waiting = true
    return Effect.ensuring(
      Queue.take(this.wake),
      Effect.sync(() => {
        this.waiting = false
      })
    )
  })
}

/**
 * The gap signal written before a client that resumes from an id the record
 * cannot resume: its empty id resets the client's last event id, since the
 * record is then delivered from its beginning.
 *
 * @internal
 */
export const gapFrame = (event: string, lastEventId: string, reason: Log.NotFoundReason): Uint8Array =>
  utf8(`id:\nevent: ${event}\ndata: ${JSON.stringify({ reason, lastEventId })}\n\n`)
