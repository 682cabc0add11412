/**
 * The feed's record: every published event of every topic in one order,
 * bounded by count, bytes and age, addressed by sequence number.
 *
 * One sequence across all topics is what lets one `Last-Event-ID` resume a
 * subscription to several topics: a client whose last event is `s` has seen
 * every event of its topics up to `s` (each connection receives its events in
 * this order) and has missed exactly those after `s`.
 *
 * Sequence numbers are contiguous and evicted from the oldest end only, so a
 * position `s` with `firstSeq - 1 <= s <= lastSeq` is exact.
 *
 * @internal
 */

/** @internal */
export interface Entry {
  readonly seq: number
  readonly id: string
  readonly topics: ReadonlyArray<string>
  readonly bytes: Uint8Array
  readonly at: number
  /** The id was given by the publisher (indexed for lookup). */
  readonly callerId: boolean
}

/** @internal */
export interface Limits {
  readonly maxEvents: number
  readonly maxBytes: number
  readonly maxAgeMillis: number
}

/** @internal */
export class Log {
  readonly limits: Limits
  private entries: Array<Entry> = []
  private head = 0
  private retainedBytes = 0
  private last = 0
  private readonly byCallerId = new Map<string, number>()

  constructor(limits: Limits) {
    this.limits = limits
  }

  get lastSeq(): number {
    return this.last
  }

  /** Oldest retained sequence number (`lastSeq + 1` when empty). */
  get firstSeq(): number {
    return this.head < this.entries.length ? this.entries[this.head]!.seq : this.last + 1
  }

  get size(): number {
    return this.entries.length - this.head
  }

  get bytes(): number {
    return this.retainedBytes
  }

  /** An empty record whose next entry is `seq + 1` (a new life, or after a hole that cannot be filled). */
  skipTo(seq: number): void {
    this.entries = []
    this.head = 0
    this.retainedBytes = 0
    this.byCallerId.clear()
    this.last = seq
  }

  /** Takes the next sequence number and records the event (unless the log keeps nothing). */
  append(entry: Entry): void {
    this.last = entry.seq
    if (this.limits.maxEvents <= 0) return
    this.entries.push(entry)
    this.retainedBytes += entry.bytes.byteLength
    if (entry.callerId) this.byCallerId.set(entry.id, entry.seq)
    this.evict(entry.at)
  }

  evict(now: number): void {
    const { maxAgeMillis, maxBytes, maxEvents } = this.limits
    const oldestAllowed = now - maxAgeMillis
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head]!
      if (this.size <= maxEvents && this.retainedBytes <= maxBytes && oldest.at > oldestAllowed) break
      this.retainedBytes -= oldest.bytes.byteLength
      if (oldest.callerId && this.byCallerId.get(oldest.id) === oldest.seq) this.byCallerId.delete(oldest.id)
      this.head++
    }
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  seqOfCallerId(id: string): number | undefined {
    return this.byCallerId.get(id)
  }

  /** Retained events after `seq` on any of `topics`, oldest first. */
  after(seq: number, topics: ReadonlySet<string>): Array<Entry> {
    const out: Array<Entry> = []
    for (let i = this.head + Math.max(0, seq - this.firstSeq + 1); i < this.entries.length; i++) {
      const entry = this.entries[i]!
      if (entry.topics.some((t) => topics.has(t))) out.push(entry)
    }
    return out
  }
}
