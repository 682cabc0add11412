/**
 * The in-memory log: the record of a hub that lives in this process (the
 * default of every hub).
 *
 * Appends are plain calls that assign the sequence number and id at once.
 * The text of the entries appended in one synchronous run is encoded
 * together at the end of the run (a microtask), in runs of up to 8 KiB of
 * characters: one encoder call and one allocation per run instead of per
 * entry (an ASCII entry's bytes are a view of its run; a retained entry pins
 * at most its run, as a small Node `Buffer` pins its pool slab). The burst
 * then goes to the history and, as one `Appended` change, to the tail.
 *
 * Guarantees: every entry is on the tail once, in order, at the end of the
 * run that appended it or at `flush`; reads see every entry appended so far
 * (they encode what is pending first); the history is bounded by count,
 * bytes and age (on the Effect `Clock`). The epoch never changes.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Log from "../../Log.ts"
import { utf8 } from "../bytes.ts"
import { atLeast, check } from "../options.ts"
import { History, type Limits } from "./history.ts"
import * as ids from "./ids.ts"
import { TypeId } from "./model.ts"

/** Characters encoded in one run. */
const runChars = 8192

/**
 * Reads and checks history bounds; what cannot work is a defect naming the
 * option (`where` says whose option it is).
 *
 * @internal
 */
export const limits = (where: string, prefix: string, options: Log.Options): Limits => {
  const { maxAge, maxBytes, maxEvents } = options
  check(where, `${prefix}maxEvents (a number)`, atLeast(maxEvents, -Infinity, false), maxEvents)
  check(where, `${prefix}maxBytes (a number)`, atLeast(maxBytes, -Infinity, false), maxBytes)
  check(
    where,
    `${prefix.length > 0 ? prefix.slice(0, -1) : "history"} (maxEvents and maxBytes cannot both be unlimited)`,
    Number.isFinite(maxEvents ?? 0) || Number.isFinite(maxBytes ?? 0),
    "Infinity"
  )
  const count = (n: number | undefined, fallback: number) => Math.max(0, Math.floor(n ?? fallback))
  return {
    maxEvents: count(maxEvents, 1_000),
    maxBytes: count(maxBytes, 1_048_576),
    maxAgeMillis: Duration.toMillis(Duration.fromInputUnsafe(maxAge ?? "1 hour"))
  }
}

class MemoryLog implements Log.Log {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly name: string
  private readonly epoch: string
  private readonly clock: Clock.Clock
  private readonly history: History
  private readonly listeners: Array<(change: Log.Change) => void> = []
  private assigned = 0

  // Appended in this run, not yet encoded (parallel arrays: no object per entry).
  private pendingFirstSeq = 0
  private pendingTexts: Array<string> = []
  private pendingIds: Array<string> = []
  private pendingAts: Array<number> = []
  private pendingCallerIds: Array<boolean> = []
  // Encoded, not yet on the tail: the burst the listeners get next.
  private burst: Array<Uint8Array> = []
  private burstFirstSeq = 0
  private scheduled = false
  // A run is one instant: the clock is read once per run.
  private runNow: number | undefined = undefined

  constructor(name: string, epoch: string, bounds: Limits, clock: Clock.Clock) {
    this.name = name
    this.epoch = epoch
    this.history = new History(bounds)
    this.clock = clock
  }

  position = (): Log.Position => ({ epoch: this.epoch, seq: this.assigned })

  append = (entries: ReadonlyArray<Log.NewEntry>) =>
    Effect.sync(() =>
      entries.map((e): Log.Recorded => {
        const id = this.appendUnsafe(e.fields, e.id)
        return { seq: this.assigned, id }
      })
    )

  read = (request: Log.ReadRequest) => Effect.sync(() => this.readUnsafe(request))

  listen = (listener: (change: Log.Change) => void) => {
    this.listeners.push(listener)
    return () => {
      const i = this.listeners.indexOf(listener)
      if (i >= 0) this.listeners.splice(i, 1)
    }
  }

  stats = (): Log.Stats => {
    this.encodePending()
    this.history.evict(this.clock.currentTimeMillisUnsafe())
    return { events: this.history.size, bytes: this.history.bytes, expiresAt: this.history.expiresAt() }
  }

  readonly synchronous: Log.Synchronous = {
    lastSeq: () => this.assigned,
    append: (fields, id) => this.appendUnsafe(fields, id),
    flush: () => this.emit(),
    read: (request) => this.readUnsafe(request)
  }

  // One call per published event: no allocation but the text.
  private appendUnsafe(fields: string, callerId: string | undefined): string {
    if (!this.scheduled) this.runNow = undefined
    const seq = ++this.assigned
    const id = callerId ?? ids.format(this.epoch, seq)
    if (this.pendingTexts.length === 0) this.pendingFirstSeq = seq
    this.pendingTexts.push(ids.frameText(id, fields))
    this.pendingIds.push(id)
    this.pendingAts.push(this.runNow ??= this.clock.currentTimeMillisUnsafe())
    this.pendingCallerIds.push(callerId !== undefined)
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.emit)
    }
    return id
  }

  // The end of a run (or a flush): the burst goes to the tail.
  private readonly emit = () => {
    this.scheduled = false
    this.runNow = undefined
    this.encodePending()
    if (this.burst.length === 0) return
    const frames = this.burst
    const first = this.burstFirstSeq
    this.burst = []
    const change: Log.Change = { _tag: "Appended", epoch: this.epoch, firstSeq: first, frames }
    for (let i = 0; i < this.listeners.length; i++) this.listeners[i]!(change)
  }

  private encodePending() {
    const n = this.pendingTexts.length
    if (n === 0) return
    const texts = this.pendingTexts
    const eventIds = this.pendingIds
    const ats = this.pendingAts
    const callerIds = this.pendingCallerIds
    const first = this.pendingFirstSeq
    this.pendingTexts = []
    this.pendingIds = []
    this.pendingAts = []
    this.pendingCallerIds = []
    if (this.burst.length === 0) this.burstFirstSeq = first
    const record = (k: number, frame: Uint8Array) => {
      this.burst.push(frame)
      this.history.append(first + k, eventIds[k]!, frame, ats[k]!, callerIds[k]!)
    }
    let i = 0
    while (i < n) {
      let j = i + 1
      let chars = texts[i]!.length
      while (j < n && chars + texts[j]!.length <= runChars) chars += texts[j++]!.length
      if (j - i === 1) {
        record(i, utf8(texts[i]!))
      } else {
        let joined = ""
        for (let k = i; k < j; k++) joined += texts[k]!
        const run = utf8(joined)
        // Only ASCII text takes exactly one byte per UTF-16 code unit; then
        // each entry's bytes are a view of the run. Otherwise, one by one.
        const ascii = run.byteLength === chars
        let offset = 0
        for (let k = i; k < j; k++) {
          const end = offset + texts[k]!.length
          record(k, ascii ? run.subarray(offset, end) : utf8(texts[k]!))
          offset = end
        }
      }
      i = j
    }
  }

  private readUnsafe(request: Log.ReadRequest): Log.ReadResult {
    this.encodePending()
    const history = this.history
    history.evict(this.clock.currentTimeMillisUnsafe())
    const last = history.lastSeq
    if (request._tag === "Newest") {
      const entries = history.newest(request.budget)
      return found(this.epoch, last, entries, entries.length === history.size)
    }
    let seq: number
    if (request._tag === "AfterSeq") {
      if (request.epoch !== this.epoch) return notFound(this.epoch, last, "restarted")
      seq = request.seq
    } else {
      const byCaller = history.seqOfCallerId(request.id)
      if (byCaller !== undefined) {
        seq = byCaller
      } else {
        const parsed = ids.parse(request.id)
        if (parsed === undefined) return notFound(this.epoch, last, "unknown")
        if (parsed.epoch !== this.epoch) return notFound(this.epoch, last, "restarted")
        seq = parsed.seq
      }
    }
    if (seq > last) return notFound(this.epoch, last, "unknown")
    // Contiguous history: `firstSeq - 1` means "has everything before what is retained".
    if (seq < history.firstSeq - 1) return notFound(this.epoch, last, "expired")
    const entries = history.after(seq, request.budget)
    return found(this.epoch, last, entries, seq + entries.length === last)
  }
}

const found = (
  epoch: string,
  lastSeq: number,
  entries: ReadonlyArray<Log.Entry>,
  complete: boolean
): Log.ReadResult => ({ _tag: "Found", epoch, lastSeq, entries, complete })

const notFound = (epoch: string, lastSeq: number, reason: Log.NotFoundReason): Log.ReadResult => ({
  _tag: "NotFound",
  epoch,
  lastSeq,
  reason
})

/** An in-memory log with checked bounds. @internal */
export const makeUnsafe = (name: string, epoch: string, bounds: Limits, clock: Clock.Clock): Log.Log =>
  new MemoryLog(name, epoch, bounds, clock)
