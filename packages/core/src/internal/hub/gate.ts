/**
 * The publish gate of a hub over a log in this process: held by a publisher
 * that waits for backpressured subscribers, so that later publishers queue
 * behind it, in order, and everyone sees one order.
 *
 * Ownership is handed from the releasing publisher straight to the next
 * waiting one (`held` stays true in between), and `held` is read by plain
 * calls (`Hub.publishUnsafe` refuses while it is set). Effect's `Semaphore`
 * cannot be read synchronously and wakes a waiter without handing it the
 * permit, so a synchronous publisher could overtake a queued one: hence this
 * small waiter list.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

/** @internal */
export class Gate {
  held = false
  private readonly waiters: Array<() => void> = []

  /** Hands the gate to the next waiting publisher, or frees it. */
  release(): void {
    const next = this.waiters.shift()
    if (next === undefined) this.held = false
    else next() // ownership passes on; `held` stays true
  }

  /**
   * Waits until the gate is handed to the caller. `ticket.handed` turns true
   * at the hand-over, so a caller interrupted after it knows to release.
   */
  wait(ticket: { handed: boolean }): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const waiter = () => {
        ticket.handed = true
        // Resume through the scheduler: a chain of waiting publishers must not
        // run nested in the releasing publisher's stack.
        resume(Effect.yieldNow)
      }
      this.waiters.push(waiter)
      return Effect.sync(() => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
      })
    })
  }
}
