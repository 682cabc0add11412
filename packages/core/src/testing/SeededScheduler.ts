/**
 * A scheduler that runs ready fibers in a seeded pseudo-random order, to turn
 * a race into a reproducible test: the same seed gives the same interleaving
 * (across runs and processes), different seeds explore different ones.
 *
 * Install it with `Effect.provideService(Scheduler.Scheduler, new SeededScheduler(seed))`.
 * Combined with `TestClock`, provide it *outside* `TestClock.layer()` so the
 * test clock wraps it.
 *
 * Limits: only work that goes through the scheduler is reordered (forks,
 * `yieldNow`, queue wake-ups, op-budget yields). Wake-ups from `Deferred` and
 * callbacks resume synchronously in the stack of whoever completes them and
 * keep their order.
 *
 * @since 0.1.0
 */
import type * as Scheduler from "effect/Scheduler"

/**
 * @since 0.1.0
 * @category models
 */
export class SeededScheduler implements Scheduler.Scheduler, Scheduler.SchedulerDispatcher {
  readonly executionMode = "async" as const
  private readonly tasks: Array<() => void> = []
  private flushPending = false
  private state: number
  private readonly preemption: number

  /**
   * @param seed any integer; the whole interleaving follows from it.
   * @param preemption probability (0..1) of yielding before an operation,
   *   which adds preemption points without touching the code under test.
   */
  constructor(seed: number, preemption = 0) {
    this.state = seed | 0
    this.preemption = preemption
  }

  // mulberry32: small, fast, good enough to pick an order.
  private next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  shouldYield(): boolean {
    return this.preemption > 0 && this.next() < this.preemption
  }

  // One dispatcher shared by every fiber, so the order is global.
  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return this
  }

  scheduleTask(task: () => void): void {
    this.tasks.push(task)
    if (!this.flushPending) {
      this.flushPending = true
      setImmediate(() => this.flush())
    }
  }

  flush(): void {
    this.flushPending = false
    while (this.tasks.length > 0) {
      const i = Math.floor(this.next() * this.tasks.length)
      const task = this.tasks[i]!
      this.tasks[i] = this.tasks[this.tasks.length - 1]!
      this.tasks.pop()
      task()
    }
  }
}
