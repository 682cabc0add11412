/**
 * Bubble options, checked and turned into a runner configuration.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import { check } from "../../internal/options.ts"
import type { Options } from "../Bubble.ts"
import { type Config, fifo } from "./runner.ts"

/** The runner configuration for bubble options (checked, naming `where`). @internal */
export const config = (where: string, options: Options | undefined, trace: boolean): Config => {
  const maxSteps = options?.maxSteps ?? 1_000_000
  check(where, "maxSteps", Number.isInteger(maxSteps) && maxSteps > 0, maxSteps)
  const seed = options?.seed ?? 0
  check(where, "seed", Number.isInteger(seed), seed)
  const grace = Duration.fromInput(options?.callbackGrace ?? 50)
  check(
    where,
    "callbackGrace",
    grace._tag === "Some" && Duration.toMillis(grace.value) >= 0 && Duration.isFinite(grace.value),
    options?.callbackGrace
  )
  const wakeups = options?.wakeups ?? "scheduled"
  check(where, "wakeups", wakeups === "scheduled" || wakeups === "inline", wakeups)
  return {
    seed,
    chooser: () => fifo,
    maxSteps,
    grace: grace._tag === "Some" ? Duration.toMillis(grace.value) : 50,
    forkSites: options?.forkSites ?? false,
    trace,
    leaks: options?.leaks ?? true,
    inlineWakeups: options?.wakeups === "inline"
  }
}
