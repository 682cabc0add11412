/**
 * A hub's publish paths, from a validated event to its log.
 *
 * - **Plain** (a log in this process, nobody can make the publisher wait):
 *   one synchronous step. The log assigns the position at once and hands the
 *   run's burst to the fan-out at the end of the run: one pass over the
 *   subscribers per burst, not per event. This is `publishUnsafe`, and what
 *   `publish` does without a fiber hop.
 * - **Gated** (a backpressured subscriber, or a publisher already waiting):
 *   the publisher takes the {@link Gate} in turn, appends, hands the entry
 *   out at once (after any burst still held), and waits for the subscribers
 *   it left blocked, each at most its timeout. The gate is always released,
 *   also on interruption.
 * - **Remote** (an asynchronous log): the events published in one run are
 *   appended as one burst, in one call (one round trip); each publisher
 *   waits for its position or the `LogError`. Delivery comes back through
 *   the tail like everyone else's.
 *
 * Metric: `sluice_hub_events_published_total` (and the rejections, see
 * `prepare`).
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { FiberLabel } from "../fiberLabel.ts"
import type { LogError } from "../log/model.ts"
import * as metrics from "../metrics.ts"
import type { Config } from "./config.ts"
import { type PayloadTooLargeError, type UnserializableDataError, WouldBlockError } from "./errors.ts"
import type { Blocked, FanOut } from "./fanOut.ts"
import { Gate } from "./gate.ts"
import { countRejection, oversize, prepare, type Prepared } from "./prepare.ts"
import type { Tail } from "./tail.ts"

interface Batch {
  readonly entries: Array<Log.NewEntry>
  readonly done: Deferred.Deferred<ReadonlyArray<Log.Recorded>, LogError>
}

/** @internal */
export class Publisher {
  /** Events published (recorded) through this hub. */
  published = 0
  lastEventId: string | undefined = undefined
  private readonly gate = new Gate()
  private batch: Batch | undefined = undefined
  private appending = 0
  private readonly publishedCell: { count: number }
  private readonly cfg: Config
  private readonly log: Log.Log
  private readonly sync: Log.Synchronous | undefined
  private readonly fanOut: FanOut
  private readonly tail: Tail
  private readonly context: Context.Context<never>

  constructor(cfg: Config, log: Log.Log, fanOut: FanOut, tail: Tail, context: Context.Context<never>) {
    this.cfg = cfg
    this.log = log
    this.sync = log.synchronous
    this.fanOut = fanOut
    this.tail = tail
    this.context = context
    this.publishedCell = metrics.hubPublishedCell(context)
  }

  /** No publisher holds the gate and no append is under way. */
  idle(): boolean {
    return !this.gate.held && this.appending === 0 && this.batch === undefined
  }

  readonly countRejection = (error: Hub.PublishError | UnserializableDataError): void =>
    countRejection(this.context, error)

  readonly publish = (input: Hub.EventInput): Effect.Effect<Hub.Published, Hub.PublishError> =>
    Effect.suspend(() => {
      const prepared = prepare(this.cfg, input)
      if ("_tag" in prepared) return this.refuse(prepared)
      const sync = this.sync
      if (sync === undefined) return this.publishRemote(prepared)
      if (this.gate.held || this.fanOut.backpressured > 0) return this.publishGated(sync, prepared)
      // Nobody can make this publish wait: one synchronous step.
      const committed = this.commit(sync, prepared)
      return "_tag" in committed ? this.refuse(committed) : Effect.succeed(committed)
    })

  // The synchronous form: the same commit, refused up front (nothing touched)
  // when the publish could have to wait.
  readonly publishUnsafe = (
    input: Hub.EventInput
  ): Result.Result<Hub.Published, Hub.PublishError | Hub.WouldBlockError> => {
    const sync = this.sync
    if (sync === undefined) {
      return Result.fail(new WouldBlockError({ subscribers: this.fanOut.backpressured, reason: "asynchronous-log" }))
    }
    if (this.gate.held || this.fanOut.backpressured > 0) {
      return Result.fail(new WouldBlockError({ subscribers: this.fanOut.backpressured }))
    }
    const prepared = prepare(this.cfg, input)
    if ("_tag" in prepared) {
      this.countRejection(prepared)
      return Result.fail(prepared)
    }
    const committed = this.commit(sync, prepared)
    if ("_tag" in committed) {
      this.countRejection(committed)
      return Result.fail(committed)
    }
    return Result.succeed(committed)
  }

  private refuse(error: Hub.PublishError): Effect.Effect<never, Hub.PublishError> {
    this.countRejection(error)
    return Effect.fail(error)
  }

  private recorded(id: string): void {
    this.published++
    this.publishedCell.count++
    this.lastEventId = id
  }

  // Appends to a log in this process; the run's burst goes out at its end.
  private commit(sync: Log.Synchronous, p: Prepared): Hub.Published | PayloadTooLargeError {
    const tooLarge = oversize(this.cfg, p, this.fanOut.epoch, () => sync.lastSeq() + 1)
    if (tooLarge !== undefined) return tooLarge
    const id = sync.append(p.fields, p.id)
    const seq = sync.lastSeq()
    this.recorded(id)
    return { seq, id, subscribers: this.fanOut.members.size }
  }

  // Appends and hands the entry out now (after the burst still held), so a
  // publisher can wait for the subscribers it leaves blocked.
  private commitNow(
    sync: Log.Synchronous,
    p: Prepared
  ): { readonly published: Hub.Published; readonly blocked: Array<Blocked> | undefined } | PayloadTooLargeError {
    this.tail.flush()
    const tooLarge = oversize(this.cfg, p, this.fanOut.epoch, () => sync.lastSeq() + 1)
    if (tooLarge !== undefined) return tooLarge
    const id = sync.append(p.fields, p.id)
    const seq = sync.lastSeq()
    this.recorded(id)
    const fanOut = this.fanOut
    fanOut.accepted = 0
    fanOut.claiming = true
    try {
      sync.flush()
    } finally {
      fanOut.claiming = false
    }
    return { published: { seq, id, subscribers: fanOut.accepted }, blocked: fanOut.takeBlocked() }
  }

  private publishGated(sync: Log.Synchronous, p: Prepared): Effect.Effect<Hub.Published, PayloadTooLargeError> {
    const gate = this.gate
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen({ self: this }, function*() {
        let owned = false
        if (gate.held) {
          const ticket = { handed: false }
          const waited = yield* Effect.exit(restore(gate.wait(ticket)))
          if (Exit.isFailure(waited)) {
            if (ticket.handed) gate.release()
            return yield* Effect.failCause(waited.cause)
          }
          owned = true
        }
        const committed = this.commitNow(sync, p)
        if ("_tag" in committed || committed.blocked === undefined) {
          if (owned) gate.release()
          if ("_tag" in committed) {
            this.countRejection(committed)
            return yield* Effect.fail(committed)
          }
          return committed.published
        }
        const { blocked, published } = committed
        if (!owned) gate.held = true
        const late = yield* Effect.exit(restore(this.fanOut.awaitBlocked(blocked)))
        gate.release()
        if (Exit.isFailure(late)) return yield* Effect.failCause(late.cause)
        return { ...published, subscribers: published.subscribers + late.value }
      })
    )
  }

  // The events of one run go to the remote log as one burst, in one call.
  private publishRemote(p: Prepared): Effect.Effect<Hub.Published, Hub.PublishError> {
    const tooLarge = oversize(this.cfg, p, this.fanOut.epoch, () => undefined)
    if (tooLarge !== undefined) return this.refuse(tooLarge)
    let batch = this.batch
    if (batch === undefined) {
      const next: Batch = { entries: [], done: Deferred.makeUnsafe() }
      batch = this.batch = next
      queueMicrotask(() => this.send(next))
    }
    const index = batch.entries.push({ fields: p.fields, id: p.id }) - 1
    return Effect.map(Deferred.await(batch.done), (recorded) => {
      const { id, seq } = recorded[index]!
      this.recorded(id)
      return { seq, id, subscribers: this.fanOut.members.size }
    })
  }

  private send(batch: Batch): void {
    this.batch = undefined
    this.appending++
    const context = Context.add(this.context, FiberLabel, "sluice/hub/append")
    Effect.runForkWith(context)(
      Effect.flatMap(Effect.exit(this.log.append(batch.entries)), (exit) =>
        Effect.sync(() => {
          this.appending--
          Deferred.doneUnsafe(batch.done, exit)
        }))
    )
  }
}
