/**
 * Replay: what a subscriber with a `Last-Event-ID` missed, and its hand-off
 * to live delivery with no gap and no duplicate.
 *
 * The log is read after the client's id, at most the hub's replay budget;
 * the result is either `Resumed` (the entries after it) or a gap signal
 * (`replay_gap`, whose id is where the client now stands) followed by what
 * the hub's `onGap` allows: nothing (the default), or the newest entries
 * within the budget. An unknown, foreign or too-old id, and a client that
 * missed more than the budget, never get the whole history.
 *
 * The hand-off, over a log in this process: the read and the subscriber's
 * registration (live from `lastSeq + 1`) are one synchronous step, so every
 * entry is either replayed or delivered live, never both, never neither.
 *
 * Over a remote log the read takes time, so the subscriber is first
 * registered as a {@link HandOff} at the fan-out's position `P`: the live
 * bursts of that time are kept aside. The read returns the entries up to the
 * record's `Q >= P`; the subscriber then gets them, then the kept entries
 * after `Q`, and goes live after whichever is newer, in one synchronous step.
 * Kept entries are bounded: past the bound they are dropped and the record is
 * read again after `Q` (it has them all). If the epoch changes meanwhile, the
 * read belongs to a lost record: the subscriber gets a `restarted` gap signal
 * and the kept entries of the new epoch.
 *
 * Metrics: `sluice_hub_replays_total{result}`, `sluice_hub_events_replayed_total`.
 *
 * @internal
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { utf8 } from "../bytes.ts"
import * as ids from "../log/ids.ts"
import type { LogError } from "../log/model.ts"
import * as metrics from "../metrics.ts"
import type { Config } from "./config.ts"

/** What replay found for a subscriber. @internal */
export interface Found {
  readonly replay: Hub.Replay
  /** The gap signal, if any, and the replayed frames. */
  readonly frames: ReadonlyArray<Uint8Array>
  /** The record's epoch and last sequence number when it was read (`Q`). */
  readonly epoch: string
  readonly lastSeq: number
}

const replays = {
  resumed: Metric.withAttributes(metrics.hubReplays, { result: "resumed" }),
  expired: Metric.withAttributes(metrics.hubReplays, { result: "expired" }),
  restarted: Metric.withAttributes(metrics.hubReplays, { result: "restarted" }),
  unknown: Metric.withAttributes(metrics.hubReplays, { result: "unknown" }),
  budget: Metric.withAttributes(metrics.hubReplays, { result: "budget" })
} as const

/** The gap signal: its id is where the client now stands. @internal */
export const gapFrame = (gapEvent: string, reason: Hub.GapReason, lastEventId: string, id: string): Uint8Array =>
  utf8(`id: ${id}\nevent: ${gapEvent}\ndata: ${JSON.stringify({ reason, lastEventId })}\n\n`)

const framesOf = (entries: ReadonlyArray<Log.Entry>): Array<Uint8Array> => entries.map((e) => e.frame)

interface Gap {
  readonly reason: Hub.GapReason
  readonly lastEventId: string
}

// The first read decides: resumed, or a gap (whose tail may need a second
// read). A client that missed more than the budget is a gap too.
const classify = (lastEventId: string, read: Log.ReadResult): Found | Gap => {
  if (read._tag === "NotFound") return { reason: read.reason, lastEventId }
  if (!read.complete) return { reason: "budget", lastEventId }
  return {
    replay: { _tag: "Resumed", lastEventId, replayed: read.entries.length },
    frames: framesOf(read.entries),
    epoch: read.epoch,
    lastSeq: read.lastSeq
  }
}

const isGap = (step: Found | Gap): step is Gap => !("replay" in step)

// A gap answered with live events only: the signal points at the newest entry.
const liveOnly = (cfg: Config, gap: Gap, read: Log.ReadResult): Found => ({
  replay: { _tag: "Gap", lastEventId: gap.lastEventId, reason: gap.reason, replayed: 0 },
  frames: [gapFrame(cfg.gapEvent, gap.reason, gap.lastEventId, ids.format(read.epoch, read.lastSeq))],
  epoch: read.epoch,
  lastSeq: read.lastSeq
})

// A gap answered with the newest retained entries: the signal points just before them.
const withTail = (cfg: Config, gap: Gap, tail: Log.ReadResult): Found => {
  const entries = tail._tag === "Found" ? tail.entries : []
  const resumeSeq = entries.length > 0 ? entries[0]!.seq - 1 : tail.lastSeq
  return {
    replay: { _tag: "Gap", lastEventId: gap.lastEventId, reason: gap.reason, replayed: entries.length },
    frames: [
      gapFrame(cfg.gapEvent, gap.reason, gap.lastEventId, ids.format(tail.epoch, resumeSeq)),
      ...framesOf(entries)
    ],
    epoch: tail.epoch,
    lastSeq: tail.lastSeq
  }
}

const count = (context: Context.Context<never>, found: Found): Found => {
  const replay = found.replay
  if (replay._tag === "Live") return found
  ;(replay._tag === "Resumed" ? replays.resumed : replays[replay.reason]).updateUnsafe(1, context)
  metrics.hubEventsReplayed.updateUnsafe(replay.replayed, context)
  return found
}

/** Replay for a subscriber without a last id: nothing. @internal */
export const live = (epoch: string, lastSeq: number): Found => ({
  replay: { _tag: "Live" },
  frames: [],
  epoch,
  lastSeq
})

/** Replay from a log in this process: synchronous, for the one-step hand-off. @internal */
export const lookupSync = (
  cfg: Config,
  log: Log.Synchronous,
  lastEventId: string,
  context: Context.Context<never>
): Found => {
  const first = log.read({ _tag: "AfterId", id: lastEventId, budget: cfg.budget })
  const step = classify(lastEventId, first)
  if (!isGap(step)) return count(context, step)
  if (cfg.onGap === "live-only") return count(context, liveOnly(cfg, step, first))
  return count(context, withTail(cfg, step, log.read({ _tag: "Newest", budget: cfg.budget })))
}

/** Replay from any log. @internal */
export const lookup = (
  cfg: Config,
  log: Log.Log,
  lastEventId: string,
  context: Context.Context<never>
): Effect.Effect<Found, LogError> =>
  Effect.flatMap(log.read({ _tag: "AfterId", id: lastEventId, budget: cfg.budget }), (first) => {
    const step = classify(lastEventId, first)
    if (!isGap(step)) return Effect.succeed(count(context, step))
    if (cfg.onGap === "live-only") return Effect.succeed(count(context, liveOnly(cfg, step, first)))
    return Effect.map(
      log.read({ _tag: "Newest", budget: cfg.budget }),
      (tail) => count(context, withTail(cfg, step, tail))
    )
  })

/**
 * A subscriber between registration and going live over a remote log: the
 * live entries of that time, kept aside in order (bounded).
 *
 * @internal
 */
export class HandOff {
  /** The fan-out's position when the hand-off began (`P`). */
  start: number
  /** Entries delivered meanwhile, from `firstSeq` on. */
  frames: Array<Uint8Array> = []
  firstSeq = 0
  /** More than `limit` arrived: they were dropped; the record must be read again. */
  overflowed = false
  /** Why what was kept cannot follow the read: the record started again, or entries were lost. */
  lost: Hub.GapReason | undefined = undefined
  private readonly limit: number

  constructor(start: number, limit: number) {
    this.start = start
    this.limit = limit
  }

  /** Keeps `frames[from..]` (entries `first + from`, …). */
  collect(frames: ReadonlyArray<Uint8Array>, first: number, from: number): void {
    if (this.overflowed) return
    if (this.frames.length + frames.length - from > this.limit) {
      this.overflowed = true
      this.frames = []
      return
    }
    if (this.frames.length === 0) this.firstSeq = first + from
    for (let i = from; i < frames.length; i++) this.frames.push(frames[i]!)
  }

  /** Starts keeping again from the fan-out's position `start` (after a new read). */
  reset(start: number): void {
    this.start = start
    this.frames = []
    this.overflowed = false
  }

  /**
   * What was kept cannot follow the read (`restarted`: the record started
   * again as a new epoch; otherwise entries were lost): it is dropped, and
   * the subscriber starts with a gap signal.
   */
  lose(reason: Hub.GapReason): void {
    this.frames = []
    this.overflowed = false
    this.lost ??= reason
  }
}

/** What a hand-off ends with: the frames to write first, and where live delivery starts. @internal */
export interface Handed {
  readonly replay: Hub.Replay
  readonly frames: ReadonlyArray<Uint8Array>
  readonly fromSeq: number
}

/**
 * Completes a hand-off (synchronously, with the subscriber's registration):
 * the replay, then the kept entries after `Q`; live from after the newer of
 * `Q` and the fan-out's position.
 *
 * @internal
 */
export const finish = (
  cfg: Config,
  handOff: HandOff,
  found: Found,
  lastEventId: string,
  position: Log.Position
): Handed => {
  if (handOff.lost !== undefined || found.epoch !== position.epoch) {
    const reason = handOff.lost ?? "restarted"
    const at = handOff.frames.length > 0 ? handOff.firstSeq - 1 : position.seq
    return {
      replay: { _tag: "Gap", lastEventId, reason, replayed: 0 },
      frames: [
        gapFrame(cfg.gapEvent, reason, lastEventId, ids.format(position.epoch, at)),
        ...handOff.frames
      ],
      fromSeq: position.seq + 1
    }
  }
  const skip = Math.max(0, found.lastSeq + 1 - handOff.firstSeq)
  const later = handOff.frames.length > skip ? handOff.frames.slice(skip) : []
  return {
    replay: found.replay,
    frames: later.length === 0 ? found.frames : [...found.frames, ...later],
    fromSeq: Math.max(found.lastSeq, position.seq) + 1
  }
}

/**
 * Reads the record again after `found` while the hand-off dropped what it
 * kept, or while the read lags what the fan-out already delivered, within
 * what is left of the replay budget and at most `rounds` times; past either
 * bound the subscriber starts with a gap signal instead.
 *
 * @internal
 */
export const catchUp = (
  cfg: Config,
  log: Log.Log,
  handOff: HandOff,
  found: Found,
  position: () => Log.Position,
  rounds = 4
): Effect.Effect<Found, LogError> =>
  Effect.suspend((): Effect.Effect<Found, LogError> => {
    if (handOff.lost !== undefined || (!handOff.overflowed && found.lastSeq >= handOff.start)) {
      return Effect.succeed(found)
    }
    let bytes = 0
    for (const frame of found.frames) bytes += frame.byteLength
    const left = { maxEvents: cfg.budget.maxEvents - found.frames.length, maxBytes: cfg.budget.maxBytes - bytes }
    if (rounds === 0 || left.maxEvents <= 0 || left.maxBytes <= 0) {
      handOff.lose(rounds === 0 ? "unknown" : "budget")
      return Effect.succeed(found)
    }
    handOff.reset(position().seq)
    return Effect.flatMap(
      log.read({ _tag: "AfterSeq", epoch: found.epoch, seq: found.lastSeq, budget: left }),
      (more) => {
        if (more._tag === "NotFound" || !more.complete) {
          handOff.lose(more._tag === "NotFound" ? more.reason : "budget")
          return Effect.succeed(found)
        }
        const replay = found.replay
        const next: Found = {
          replay: replay._tag === "Live" ? replay : { ...replay, replayed: replay.replayed + more.entries.length },
          frames: [...found.frames, ...framesOf(more.entries)],
          epoch: more.epoch,
          lastSeq: more.lastSeq
        }
        return catchUp(cfg, log, handOff, next, position, rounds - 1)
      }
    )
  })
