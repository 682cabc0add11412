/**
 * The subscribers of a hub: a dense array for a tight fan-out loop, O(1) add
 * and remove, and safe mutation while a fan-out is iterating (a subscriber
 * ended in the middle of the loop is removed once the loop is over).
 *
 * @internal
 */

/** @internal */
export interface Member {
  /** Position in the array (meaningful only while in it). */
  index: number
  /** In the set (removal is immediate for this flag, even while iterating). */
  live: boolean
}

/**
 * The set: `items` is the dense array a fan-out iterates between `begin()`
 * and `end()`; adds and removes during an iteration wait for its end.
 *
 * @internal
 */
export class SubscriberSet<M extends Member> {
  readonly items: Array<M> = []
  private iterating = 0
  private deferred: Array<{ readonly add: boolean; readonly member: M }> = []
  private count = 0

  /** Subscribers in the set (pending removals excluded). */
  get size(): number {
    return this.count
  }

  add(member: M): void {
    member.live = true
    this.count++
    if (this.iterating > 0) this.deferred.push({ add: true, member })
    else this.place(member)
  }

  /** `false` when the member was not (or no longer) in the set. */
  remove(member: M): boolean {
    if (!member.live) return false
    member.live = false
    this.count--
    if (this.iterating > 0) this.deferred.push({ add: false, member })
    else this.unplace(member)
    return true
  }

  private place(member: M): void {
    member.index = this.items.length
    this.items.push(member)
  }

  private unplace(member: M): void {
    const i = member.index
    if (this.items[i] !== member) return
    const last = this.items.pop()!
    if (last !== member) {
      this.items[i] = last
      last.index = i
    }
  }

  /**
   * Starts an iteration over `items`: until {@link end}, adds and removes
   * only flip `live` and apply afterwards, so indexes stay valid.
   */
  begin(): ReadonlyArray<M> {
    this.iterating++
    return this.items
  }

  end(): void {
    if (--this.iterating > 0 || this.deferred.length === 0) return
    const pending = this.deferred
    this.deferred = []
    for (const { add, member } of pending) {
      if (add) this.place(member)
      else this.unplace(member)
    }
  }
}
