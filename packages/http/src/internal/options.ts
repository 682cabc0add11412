import * as Duration from "effect/Duration"

/**
 * Checks of options that cannot work: programming errors, reported when the
 * route, server or client stream is described, naming the option, rather
 * than on every request (or never, as a limit of `NaN` that never applies).
 *
 * @internal
 */
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
