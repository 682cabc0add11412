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
 * keep their order. `Race.check` explores those too, records schedules,
 * replays and shrinks them: prefer it for new tests.
 *
 * Preemption never hits the first two operations of a run loop (the resume
 * itself and the operation it resumes), so every resume makes progress.
 * Before 0.2.0 the operation a preempted fiber resumed with could be
 * preempted again: a random walk that livelocked at probabilities of 0.5 and
 * more.
 *
 * @since 0.1.0
 */
import type * as Fiber from "effect/Fiber"
import type * as Scheduler from "effect/Scheduler"
import { check } from "../internal/options.ts"

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
   * @param preemption probability (0 to 1) of yielding before an operation,
   *   which adds preemption points without touching the code under test.
   *   Anything else (negative, above 1, `NaN`) throws a `RangeError`.
   */
  constructor(seed: number, preemption = 0) {
    check("SeededScheduler", "seed", Number.isFinite(seed), seed)
    check(
      "SeededScheduler",
      "preemption",
      typeof preemption === "number" && preemption >= 0 && preemption <= 1,
      preemption
    )
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

  // A run loop starts by resuming (operation 1) into the operation that was
  // interrupted by the yield (operation 2): preempting either would undo the
  // resume, so both always run.
  shouldYield(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    return this.preemption > 0 && fiber.currentOpCount > 2 && this.next() < this.preemption
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

  // Runs the tasks that were ready when the round started, in a seeded order;
  // tasks they schedule wait for the next round. Each round is its own
  // macrotask, so timers (a test's timeout) and I/O still run between rounds
  // even when fibers keep yielding to each other.
  flush(): void {
    this.flushPending = false
    const round = this.tasks.splice(0)
    while (round.length > 0) {
      const i = Math.floor(this.next() * round.length)
      const task = round[i]!
      round[i] = round[round.length - 1]!
      round.pop()
      task()
    }
    if (this.tasks.length > 0 && !this.flushPending) {
      this.flushPending = true
      setImmediate(() => this.flush())
    }
  }
}
