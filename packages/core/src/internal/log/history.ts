/**
 * An in-memory log's history: the most recent entries, bounded by count,
 * bytes and age, addressed by sequence number.
 *
 * Sequence numbers are contiguous: the history always holds the entries
 * `firstSeq .. lastSeq` (possibly none), evicting from the oldest end only.
 * That is what makes replay exact: a client whose last entry is `s` with
 * `firstSeq - 1 <= s <= lastSeq` has missed exactly `s + 1 .. lastSeq`.
 *
 * @internal
 */
import type * as Log from "../../Log.ts"

/** A retained entry (a `Log.Entry`, with what eviction and lookup need). @internal */
export interface Entry extends Log.Entry {
  /** Clock time of the append, in milliseconds. */
  readonly at: number
  /** The id was given by the publisher (indexed for lookup), not derived from `seq`. */
  readonly callerId: boolean
}

/** @internal */
export interface Limits {
  readonly maxEvents: number
  readonly maxBytes: number
  /** `Infinity` for no age limit. */
  readonly maxAgeMillis: number
}

/** @internal */
export class History {
  readonly limits: Limits
  // entries[head ..] are retained; the prefix is compacted away now and then.
  private entries: Array<Entry> = []
  private head = 0
  private retainedBytes = 0
  private last = 0
  private readonly byCallerId = new Map<string, number>()

  constructor(limits: Limits) {
    this.limits = limits
  }

  /** Sequence number of the last entry appended (0 before the first). */
  get lastSeq(): number {
    return this.last
  }

  /** Sequence number of the oldest retained entry (`lastSeq + 1` when empty). */
  get firstSeq(): number {
    return this.head < this.entries.length ? this.entries[this.head]!.seq : this.last + 1
  }

  get size(): number {
    return this.entries.length - this.head
  }

  get bytes(): number {
    return this.retainedBytes
  }

  /**
   * Records an entry appended at `at` (its `seq` must be `lastSeq + 1`) and
   * evicts what the limits no longer allow. Fields, not an entry: a history
   * that keeps nothing allocates nothing.
   */
  append(seq: number, id: string, frame: Uint8Array, at: number, callerId: boolean): void {
    this.last = seq
    if (this.limits.maxEvents <= 0) return
    this.entries.push({ seq, id, frame, at, callerId })
    this.retainedBytes += frame.byteLength
    if (callerId) this.byCallerId.set(id, seq)
    this.evict(at)
  }

  /** Drops entries beyond the count and byte limits and those older than the age limit. */
  evict(now: number): void {
    const { maxAgeMillis, maxBytes, maxEvents } = this.limits
    const oldestAllowed = now - maxAgeMillis
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head]!
      if (this.size <= maxEvents && this.retainedBytes <= maxBytes && oldest.at > oldestAllowed) break
      this.retainedBytes -= oldest.frame.byteLength
      if (oldest.callerId && this.byCallerId.get(oldest.id) === oldest.seq) this.byCallerId.delete(oldest.id)
      this.head++
    }
    // Compact once the dead prefix dominates, so memory follows the retained size.
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /** Sequence number of a retained entry that carried this publisher-given id. */
  seqOfCallerId(id: string): number | undefined {
    return this.byCallerId.get(id)
  }

  /**
   * The retained entries after `seq`, oldest first, at most `budget` of them
   * (always one when there is one and `maxEvents >= 1`). `seq` must be at
   * least `firstSeq - 1`.
   */
  after(seq: number, budget: Log.Budget): ReadonlyArray<Entry> {
    const start = this.head + Math.max(0, seq - this.firstSeq + 1)
    let end = start
    let bytes = 0
    while (end < this.entries.length && end - start < budget.maxEvents) {
      bytes += this.entries[end]!.frame.byteLength
      if (bytes > budget.maxBytes && end > start) break
      end++
    }
    return this.entries.slice(start, end)
  }

  /** The newest retained entries within `budget`, oldest first. */
  newest(budget: Log.Budget): ReadonlyArray<Entry> {
    let start = this.entries.length
    let bytes = 0
    while (start > this.head && this.entries.length - start < budget.maxEvents) {
      bytes += this.entries[start - 1]!.frame.byteLength
      if (bytes > budget.maxBytes && start < this.entries.length) break
      start--
    }
    return this.entries.slice(start)
  }

  /** Clock time at which the newest retained entry expires (`undefined` when empty or ageless). */
  expiresAt(): number | undefined {
    if (this.size === 0 || !Number.isFinite(this.limits.maxAgeMillis)) return undefined
    return this.entries[this.entries.length - 1]!.at + this.limits.maxAgeMillis
  }
}
