/**
 * A fixed-size latency histogram (values in µs) with about 3% precision, so that millions of
 * samples cost a few KiB and histograms from several processes can be added together.
 *
 * Values below 64 µs get one bucket each; above, every power of two is split in 32 buckets.
 */

const SUB_BITS = 5
const SUB = 1 << SUB_BITS
const LINEAR = SUB * 2
const OCTAVES = 32 - (SUB_BITS + 1)

/** Number of buckets. */
export const bucketCount = LINEAR + OCTAVES * SUB

const indexOf = (us: number): number => {
  const v = us <= 0 ? 0 : us >= 0x7FFFFFFF ? 0x7FFFFFFF : Math.floor(us)
  if (v < LINEAR) return v
  const exponent = 31 - Math.clz32(v)
  return LINEAR + (exponent - SUB_BITS - 1) * SUB + ((v >>> (exponent - SUB_BITS)) & (SUB - 1))
}

/** The value a bucket stands for: the middle of its range. */
const valueOf = (index: number): number => {
  if (index < LINEAR) return index
  const octave = Math.floor((index - LINEAR) / SUB)
  const exponent = octave + SUB_BITS + 1
  const width = 2 ** (exponent - SUB_BITS)
  const low = 2 ** exponent + ((index - LINEAR) % SUB) * width
  return low + width / 2
}

export class Histogram {
  readonly counts: Float64Array = new Float64Array(bucketCount)
  count = 0
  max = 0

  record(us: number): void {
    this.counts[indexOf(us)]!++
    this.count++
    if (us > this.max) this.max = us
  }

  /** Adds the counts of a histogram sent by another process. */
  merge(other: HistogramData): void {
    for (let i = 0; i < bucketCount; i++) this.counts[i]! += other.counts[i] ?? 0
    this.count += other.count
    if (other.max > this.max) this.max = other.max
  }

  /** The value at quantile `q` (0..1), in µs; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < bucketCount; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(valueOf(i), this.max)
    }
    return this.max
  }

  /** A plain object for IPC (only the used part of the buckets is sent). */
  toData(): HistogramData {
    let last = bucketCount - 1
    while (last >= 0 && this.counts[last] === 0) last--
    return { counts: Array.from(this.counts.subarray(0, last + 1)), count: this.count, max: this.max }
  }
}

/** A histogram as sent between processes. */
export interface HistogramData {
  readonly counts: ReadonlyArray<number>
  readonly count: number
  readonly max: number
}
