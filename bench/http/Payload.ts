/**
 * The data of every benchmark event: `<seq> <publish time in µs> <padding>`, one line of
 * ASCII. The publish time is `process.hrtime.bigint()` (CLOCK_MONOTONIC, shared by every
 * process on the machine), so a client in another process can compute the latency.
 */

/** Microseconds on the monotonic clock shared by the processes of this machine. */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)

/**
 * Builds the data of event `seq`, published at `timeUs`, padded to about `bytes` bytes. The
 * publisher reads the clock once per burst: the events of a burst go out in the same tick.
 */
export const makePayload = (seq: number, timeUs: string, bytes: number): string => {
  const head = String(seq) + " " + timeUs + " "
  return head + padding(Math.max(1, bytes - head.length))
}

const pads = new Map<number, string>()
const padding = (n: number): string => {
  let pad = pads.get(n)
  if (pad === undefined) {
    pad = "x".repeat(n)
    pads.set(n, pad)
  }
  return pad
}

/** The head of a payload, as read by `readHead`. */
export const head = { seq: -1, timeUs: -1 }

/**
 * Reads `<seq> <time>` from the start of a payload's bytes into `head`; returns false (and
 * leaves `head.seq` at -1) when the data is not one of ours. Works on bytes, without
 * decoding, because the load clients read millions of them per second.
 */
export const readHead = (bytes: Uint8Array, offset: number, length: number): boolean => {
  head.seq = -1
  const end = offset + length
  let i = offset
  let seq = 0
  while (i < end && bytes[i] !== 32) {
    const digit = bytes[i++]! - 48
    if (digit < 0 || digit > 9) return false
    seq = seq * 10 + digit
  }
  if (i === offset || i >= end) return false
  let time = 0
  const start = ++i
  while (i < end && bytes[i] !== 32) {
    const digit = bytes[i++]! - 48
    if (digit < 0 || digit > 9) return false
    time = time * 10 + digit
  }
  if (i === start) return false
  head.seq = seq
  head.timeUs = time
  return true
}
