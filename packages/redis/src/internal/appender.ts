/**
 * A log's publishing side on one node: appends coalesced into bursts, one
 * script call per burst, at most `maxInFlight` calls in flight per log
 * (pipelined: Redis runs one while this node prepares the next).
 *
 * ```text
 * append(a) ─┐
 * append(b) ─┼─▶ [ waiting: bounded ] ─▶ one script call: a+b+c ─▶ each caller gets its positions
 * append(c) ─┘        (while the previous calls are in flight)
 * ```
 *
 * What it guarantees:
 * - **One round trip per burst**, not per event: appends that arrive while a
 *   call is in flight go out together in the next one (up to `maxBatch`
 *   events), so a busy topic costs a round trip per burst.
 * - **Order**: bursts go out one after another, in the order appends
 *   arrived; within one call the script numbers them in that order. Calls in
 *   flight together are run by Redis in the order they were sent (one
 *   connection answers in order, as the `Redis` service's clients do).
 * - **Bounded**: at most `maxPending` events wait; an append beyond that
 *   fails at once with a `LogError` (nothing is queued behind an outage).
 * - **Typed failures**: a call that fails or times out fails every append in
 *   it with a `LogError`; a timed-out call may still be recorded, which the
 *   error says.
 *
 * @internal
 */
import type { Log } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/** @internal */
export interface Request {
  readonly entries: ReadonlyArray<Log.NewEntry>
  readonly resume: (exit: Exit.Exit<ReadonlyArray<Log.Recorded>, Log.LogError>) => void
}

/** @internal */
export interface Deps {
  /** Sends one burst; succeeds with the positions of its entries, in order. */
  readonly send: (entries: ReadonlyArray<Log.NewEntry>) => Effect.Effect<ReadonlyArray<Log.Recorded>, Log.LogError>
  /** Forks the sending loop into the node's fibers. */
  readonly run: (effect: Effect.Effect<void>) => void
  readonly maxPending: number
  readonly maxBatch: number
  /** Script calls in flight at once (1: one after another). */
  readonly maxInFlight: number
  /** The error for an append refused because too many events wait. */
  readonly full: (waiting: number) => Log.LogError
}

/** @internal */
export class Appender {
  private waiting: Array<Request> = []
  private waitingEvents = 0
  private sending = 0
  private readonly deps: Deps

  constructor(deps: Deps) {
    this.deps = deps
  }

  /** Events waiting to be sent (not counting the call in flight). */
  get pending(): number {
    return this.waitingEvents
  }

  append(entries: ReadonlyArray<Log.NewEntry>): Effect.Effect<ReadonlyArray<Log.Recorded>, Log.LogError> {
    if (entries.length === 0) return Effect.succeed([])
    return Effect.callback<ReadonlyArray<Log.Recorded>, Log.LogError>((resume) => {
      if (this.waitingEvents + entries.length > this.deps.maxPending) {
        resume(Effect.fail(this.deps.full(this.waitingEvents)))
        return
      }
      const request: Request = { entries, resume: (exit) => resume(exit) }
      this.waiting.push(request)
      this.waitingEvents += entries.length
      this.kick()
      // An append interrupted before its burst went out leaves it.
      return Effect.sync(() => {
        const i = this.waiting.indexOf(request)
        if (i >= 0) {
          this.waiting.splice(i, 1)
          this.waitingEvents -= entries.length
        }
      })
    })
  }

  private kick(): void {
    if (this.sending >= this.deps.maxInFlight) return
    this.sending++
    this.deps.run(Effect.ensuring(this.loop, Effect.sync(() => this.stop())))
  }

  private stop(): void {
    this.sending--
    if (this.waiting.length > 0) this.kick()
  }

  // Takes whole requests up to `maxBatch` events (at least one request).
  private take(): Array<Request> {
    let n = 0
    let k = 0
    while (k < this.waiting.length && (k === 0 || n + this.waiting[k]!.entries.length <= this.deps.maxBatch)) {
      n += this.waiting[k]!.entries.length
      k++
    }
    const batch = this.waiting.splice(0, k)
    this.waitingEvents -= n
    return batch
  }

  private readonly loop: Effect.Effect<void> = Effect.suspend(() => {
    if (this.waiting.length === 0) return Effect.void
    const batch = this.take()
    const entries = batch.length === 1 ? batch[0]!.entries : batch.flatMap((r) => r.entries)
    return Effect.flatMap(Effect.exit(this.deps.send(entries)), (exit) => {
      if (Exit.isFailure(exit)) {
        for (const r of batch) r.resume(exit)
      } else {
        let at = 0
        for (const r of batch) {
          r.resume(Exit.succeed(exit.value.slice(at, at + r.entries.length)))
          at += r.entries.length
        }
      }
      return this.loop
    })
  })
}
