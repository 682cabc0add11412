/**
 * Checks of numeric options. A setting that cannot work is a programming
 * error: it is reported when the thing is made, naming the option, instead of
 * silently becoming `NaN` (a mailbox that never has room, a limit that never
 * applies). Thrown as a `RangeError`, which inside an effect is a defect with
 * that message.
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
