/**
 * Log-assigned event ids: `<epoch>-<seq>`, where the epoch names one life of
 * the record. A `Last-Event-ID` carrying another epoch was assigned before
 * the record was lost (an in-memory log's process restarted, a topic was
 * recreated, Redis lost the stream), so what it points at is gone.
 *
 * @internal
 */

/** Lower-case letters and digits. */
const epochPattern = /^[0-9a-z]+$/

/** @internal */
export const isValidEpoch = (epoch: string): boolean => epochPattern.test(epoch)

/**
 * A random epoch: `length` base-36 characters from `next` (a uniform double
 * in [0, 1)). A log's epoch is on the wire in every event's id, so it is
 * short: {@link logEpochLength} characters are 36^6 (about 2.2 billion)
 * values, enough that a restarted log never takes its predecessor's epoch
 * by chance. Names that only have to be unique use the default.
 *
 * @internal
 */
export const randomEpoch = (next: () => number, length = 10): string => {
  let out = ""
  for (let i = 0; i < length; i++) out += Math.floor(next() * 36).toString(36)
  return out
}

/** @internal */
export const logEpochLength = 6

/** @internal */
export const format = (epoch: string, seq: number): string => `${epoch}-${seq}`

/** @internal */
export interface Parsed {
  readonly epoch: string
  readonly seq: number
}

/** Reads an id in the log format, or `undefined` for anything else. @internal */
export const parse = (id: string): Parsed | undefined => {
  const dash = id.lastIndexOf("-")
  if (dash <= 0 || dash === id.length - 1) return undefined
  const epoch = id.slice(0, dash)
  const digits = id.slice(dash + 1)
  if (!epochPattern.test(epoch) || !/^\d+$/.test(digits)) return undefined
  const seq = Number(digits)
  return Number.isSafeInteger(seq) ? { epoch, seq } : undefined
}

/** An entry's wire text: its id line, then its fields. @internal */
export const frameText = (id: string, fields: string): string => id === "" ? `id:\n${fields}` : `id: ${id}\n${fields}`
