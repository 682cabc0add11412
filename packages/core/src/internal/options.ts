/**
 * Checks of options: a setting that cannot work is a programming error, so
 * it is reported when the thing is made, naming the option, instead of
 * silently becoming `NaN` (a mailbox that never has room, a limit that never
 * applies). Thrown as a `RangeError`, which inside an effect is a defect
 * with that message. Public as `OptionCheck`, for the other sluice packages
 * and for integrations.
 *
 * @internal
 */
import * as Duration from "effect/Duration"

/** @internal */
export const check = (where: string, name: string, ok: boolean, value: unknown): void => {
  if (!ok) throw new RangeError(`${where}: invalid ${name} (got ${String(value)})`)
}

/** `undefined`, or a number that is at least `min` (`Infinity` allowed when `finite` is false). @internal */
export const atLeast = (value: unknown, min: number, finite = true): boolean =>
  value === undefined ||
  (typeof value === "number" && !Number.isNaN(value) && value >= min && (!finite || Number.isFinite(value)))

/** A duration in milliseconds, `fallback` when absent, `NaN` when it is not a duration. @internal */
export const millis = (input: Duration.Input | undefined, fallback: number): number => {
  if (input === undefined) return fallback
  try {
    return Duration.toMillis(Duration.fromInputUnsafe(input))
  } catch {
    return Number.NaN
  }
}
