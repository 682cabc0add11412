/**
 * A remote log, played by the test: a record in memory whose appends and
 * reads complete only when the test (or a seeded driver) says so, and whose
 * tail delivers, drops or reorders nothing unless told. It implements the
 * public `Log` interface without `synchronous`, so a hub over it takes every
 * asynchronous path a Redis log would.
 */
import { Effect, Fiber } from "effect"
import { Log } from "../../src/index.ts"

interface Pending {
  readonly kind: "append" | "read"
  /** Does the operation against the record as it is now; the returned call hands the answer over. */
  readonly answer: () => () => void
}

interface Stored extends Log.Entry {
  readonly callerId: boolean
}

const encoder = new TextEncoder()

export class FakeLog implements Log.Log {
  readonly [Log.TypeId]: typeof Log.TypeId = Log.TypeId
  readonly name = "fake"
  readonly synchronous = undefined
  epoch: string
  /** Entries kept by the record (oldest dropped beyond `maxEvents`). */
  readonly record: Array<Stored> = []
  last = 0
  /** Operations waiting for the test. */
  readonly pending: Array<Pending> = []
  /** Changes waiting to be delivered by the tail. */
  readonly tail: Array<Log.Change> = []
  /** Calls of `append`, with the number of entries of each. */
  readonly appends: Array<number> = []
  reads = 0
  private failures: Array<"append" | "read"> = []
  private tailSeq: number
  private readonly listeners: Array<(change: Log.Change) => void> = []
  private readonly maxEvents: number

  constructor(options: { readonly epoch?: string; readonly maxEvents?: number } = {}) {
    this.epoch = options.epoch ?? "a"
    this.maxEvents = options.maxEvents ?? 1_000
    this.tailSeq = 0
  }

  position = (): Log.Position => ({ epoch: this.epoch, seq: this.tailSeq })

  append = (entries: ReadonlyArray<Log.NewEntry>) =>
    Effect.callback<ReadonlyArray<Log.Recorded>, Log.LogError>((resume) => {
      this.appends.push(entries.length)
      this.pending.push({
        kind: "append",
        answer: () => {
          if (this.takeFailure("append")) {
            return () => resume(Effect.fail(new Log.LogError({ log: this.name, operation: "append", reason: "test" })))
          }
          const recorded = this.appendNow(entries)
          return () => resume(Effect.succeed(recorded))
        }
      })
    })

  read = (request: Log.ReadRequest) =>
    Effect.callback<Log.ReadResult, Log.LogError>((resume) => {
      this.reads++
      this.pending.push({
        kind: "read",
        answer: () => {
          if (this.takeFailure("read")) {
            return () => resume(Effect.fail(new Log.LogError({ log: this.name, operation: "read", reason: "test" })))
          }
          const result = this.readNow(request)
          return () => resume(Effect.succeed(result))
        }
      })
    })

  listen = (listener: (change: Log.Change) => void) => {
    this.listeners.push(listener)
    return () => {
      this.listeners.splice(this.listeners.indexOf(listener), 1)
    }
  }

  stats = (): Log.Stats => ({ events: 0, bytes: 0, expiresAt: undefined })

  // ---------------------------------------------------------------------------
  // The test's controls

  /** The next operation of this kind fails with `LogError`. */
  failNext(kind: "append" | "read"): void {
    this.failures.push(kind)
  }

  /** Completes the `i`-th waiting operation (default: the oldest). */
  complete(i = 0): boolean {
    const op = this.pending.splice(i, 1)[0]
    op?.answer()()
    return op !== undefined
  }

  /**
   * Does the `i`-th waiting operation now, against the record as it is, and
   * returns the call that hands its answer over later (an answer in flight).
   */
  answerLater(i = 0): () => void {
    return this.pending.splice(i, 1)[0]!.answer()
  }

  /** Completes every waiting operation of `kind`, oldest first. */
  completeAll(kind?: "append" | "read"): void {
    for (let i = 0; i < this.pending.length;) {
      if (kind === undefined || this.pending[i]!.kind === kind) this.complete(i)
      else i++
    }
  }

  /** Delivers the next `n` tail changes (default: all). */
  deliver(n = Number.POSITIVE_INFINITY): void {
    for (let k = 0; k < n && this.tail.length > 0; k++) {
      const change = this.tail.shift()!
      if (change._tag === "Appended") this.tailSeq = change.firstSeq + change.frames.length - 1
      else if (change._tag === "EpochChanged") this.tailSeq = change.seq
      for (const l of this.listeners.slice()) l(change)
    }
  }

  /** Drops the next tail change (a lost Pub/Sub message). */
  drop(): void {
    this.tail.shift()
  }

  /** Queues a `Missed` on the tail. */
  missed(): void {
    this.tail.push(Log.missed(this.epoch, this.tailSeq))
  }

  /** The record is lost and starts again as `epoch` (announced on the tail unless `silent`). */
  lose(epoch: string, silent = false): void {
    this.epoch = epoch
    this.record.length = 0
    this.last = 0
    this.tail.length = 0
    if (!silent) this.tail.push(Log.epochChanged(epoch, 0))
  }

  /** Drops retained entries up to `seq` (as trimming would). */
  trim(seq: number): void {
    while (this.record.length > 0 && this.record[0]!.seq <= seq) this.record.shift()
  }

  /** Completes everything and delivers the tail until nothing is left. */
  settle(): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      for (let round = 0; round < 10_000; round++) {
        yield* Effect.yieldNow
        if (this.pending.length === 0 && this.tail.length === 0) {
          // Twice quiet in a row: woken fibers had their turn.
          yield* Effect.yieldNow
          if (this.pending.length === 0 && this.tail.length === 0) return
        }
        this.completeAll()
        this.deliver()
      }
    })
  }

  /**
   * A driver fiber that, until interrupted, does waiting operations, hands
   * their answers over and delivers tail changes, each step drawn from
   * `seed`: an answer can be computed long before it arrives, reads overtake
   * appends, the tail lags the record or runs ahead of a read, all
   * reproducibly.
   */
  drive(seed: number): Effect.Effect<Fiber.Fiber<never>> {
    let state = seed | 0
    const rand = () => {
      state = (state + 0x6d2b79f5) | 0
      let t = Math.imul(state ^ (state >>> 15), state | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const inFlight: Array<() => void> = []
    return Effect.forkChild(Effect.forever(Effect.andThen(
      Effect.sync(() => {
        const choices = this.pending.length + inFlight.length + (this.tail.length > 0 ? 1 : 0)
        if (choices === 0) return
        const pick = Math.floor(rand() * choices)
        if (pick < this.pending.length) inFlight.push(this.answerLater(pick))
        else if (pick < this.pending.length + inFlight.length) inFlight.splice(pick - this.pending.length, 1)[0]!()
        else this.deliver(1)
      }),
      Effect.yieldNow
    )))
  }

  // ---------------------------------------------------------------------------

  private takeFailure(kind: "append" | "read"): boolean {
    const i = this.failures.indexOf(kind)
    if (i === -1) return false
    this.failures.splice(i, 1)
    return true
  }

  private appendNow(entries: ReadonlyArray<Log.NewEntry>): ReadonlyArray<Log.Recorded> {
    const first = this.last + 1
    const frames: Array<Uint8Array> = []
    const recorded = entries.map((e) => {
      const seq = ++this.last
      const id = e.id ?? Log.formatId(this.epoch, seq)
      const frame = encoder.encode(Log.frameText(id, e.fields))
      this.record.push({ seq, id, frame, callerId: e.id !== undefined })
      frames.push(frame)
      return { seq, id }
    })
    while (this.record.length > this.maxEvents) this.record.shift()
    this.tail.push(Log.appended(this.epoch, first, frames))
    return recorded
  }

  private readNow(request: Log.ReadRequest): Log.ReadResult {
    const firstSeq = this.record.length > 0 ? this.record[0]!.seq : this.last + 1
    const take = (from: number, budget: Log.Budget) => {
      const out: Array<Log.Entry> = []
      let bytes = 0
      for (let i = from; i < this.record.length && out.length < budget.maxEvents; i++) {
        bytes += this.record[i]!.frame.byteLength
        if (bytes > budget.maxBytes && out.length > 0) break
        out.push(this.record[i]!)
      }
      return out
    }
    if (request._tag === "Newest") {
      const start = Math.max(0, this.record.length - request.budget.maxEvents)
      const entries = take(start, request.budget)
      return Log.found(this.epoch, this.last, entries, start === 0)
    }
    let seq: number
    if (request._tag === "AfterSeq") {
      if (request.epoch !== this.epoch) return Log.notFound(this.epoch, this.last, "restarted")
      seq = request.seq
    } else {
      const byCaller = this.record.findLast((e) => e.callerId && e.id === request.id)
      const parsed = Log.parseId(request.id)
      if (byCaller !== undefined) seq = byCaller.seq
      else if (parsed === undefined) return Log.notFound(this.epoch, this.last, "unknown")
      else if (parsed.epoch !== this.epoch) return Log.notFound(this.epoch, this.last, "restarted")
      else seq = parsed.seq
    }
    if (seq > this.last) return Log.notFound(this.epoch, this.last, "unknown")
    if (seq < firstSeq - 1) return Log.notFound(this.epoch, this.last, "expired")
    const entries = take(seq - firstSeq + 1, request.budget)
    return Log.found(this.epoch, this.last, entries, seq + entries.length === this.last)
  }
}
