/**
 * A hub's options, read and checked once when the hub is made. Options that
 * cannot work are refused then, naming the option: the gap event type and
 * the epoch as `InvalidEventError` (like an invalid event), numeric limits as
 * a defect.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import type * as Hub from "../../Hub.ts"
import type * as Log from "../../Log.ts"
import { InvalidEventError } from "../../SseEvent.ts"
import { frameText } from "../encoder.ts"
import type { Limits } from "../log/history.ts"
import * as ids from "../log/ids.ts"
import * as memory from "../log/memory.ts"
import { atLeast, check } from "../options.ts"

/** Validated hub options. @internal */
export interface Config {
  /** The bounds of the in-memory log the hub makes when it is given none. */
  readonly history: Limits
  readonly maxEventBytes: number
  readonly allowed: ReadonlySet<string> | undefined
  readonly onGap: "replay-retained" | "live-only"
  readonly gapEvent: string
  /** What one subscribe may replay. */
  readonly budget: Log.Budget
  /** The coalescing window, in nanoseconds (`undefined`: none). */
  readonly coalesceNanos: number | undefined
}

// A duration's milliseconds, `NaN` for what is not one.
const durationMillis = (input: Duration.Input): number => {
  try {
    return Duration.toMillis(Duration.fromInputUnsafe(input))
  } catch {
    return Number.NaN
  }
}

/** Reads and checks options. @internal */
export const config = (options: Hub.Options): Result.Result<Config, InvalidEventError> => {
  const gapEvent = options.gapEvent ?? "replay_gap"
  const gapCheck = frameText({ _tag: "Event", event: gapEvent, data: "" })
  if (typeof gapCheck !== "string") return Result.fail(gapCheck)
  if (options.epoch !== undefined && !ids.isValidEpoch(options.epoch)) {
    return Result.fail(
      new InvalidEventError({
        field: "id",
        reason: `the epoch must be lower-case letters and digits (got ${JSON.stringify(options.epoch)})`
      })
    )
  }
  if (options.log !== undefined) {
    // The given log has its own bounds and epoch: these would silently not apply.
    check("Hub", "history (a given log has its own bounds)", options.history === undefined, "set")
    check("Hub", "epoch (a given log has its own epoch)", options.epoch === undefined, options.epoch)
  }
  const history = options.history === false ? { maxEvents: 0 } : options.history ?? {}
  check("Hub", "maxEventBytes (a finite number, at least 1)", atLeast(options.maxEventBytes, 1), options.maxEventBytes)
  const budget = options.replayBudget ?? {}
  check("Hub", "replayBudget.maxEvents (a number, at least 1)", atLeast(budget.maxEvents, 1, false), budget.maxEvents)
  check("Hub", "replayBudget.maxBytes (a number, at least 1)", atLeast(budget.maxBytes, 1, false), budget.maxBytes)
  const coalesceMillis = options.coalesce === false ? 0 : durationMillis(options.coalesce ?? "2 millis")
  check(
    "Hub",
    "coalesce (a finite duration, or false)",
    Number.isFinite(coalesceMillis) && coalesceMillis >= 0,
    options.coalesce
  )
  return Result.succeed({
    coalesceNanos: coalesceMillis > 0 ? coalesceMillis * 1e6 : undefined,
    history: memory.limits("Hub", "history.", history),
    maxEventBytes: Math.floor(options.maxEventBytes ?? 65_536),
    allowed: options.allowedEvents === undefined ? undefined : new Set(options.allowedEvents),
    onGap: options.onGap ?? "live-only",
    gapEvent,
    budget: {
      maxEvents: Math.floor(budget.maxEvents ?? 1_000),
      maxBytes: Math.floor(budget.maxBytes ?? 262_144)
    }
  })
}
