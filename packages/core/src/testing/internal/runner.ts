/**
 * The engine of a bubble: one scheduler that owns every fiber forked inside,
 * a virtual clock, and the loop that runs them one task at a time.
 *
 * How it owns the fibers:
 *
 * - It is the `Scheduler` of every fiber of the bubble, with one dispatcher
 *   shared by all of them, so every fork, yield and queue wake-up is a task in
 *   one ready list, and a `Chooser` decides which runs next.
 * - The runtime asks `shouldYield(fiber)` before each operation of a fiber.
 *   The first operation of a run loop tells the runner which fiber a task
 *   belongs to. When a fiber starts running *inside another fiber's task* (a
 *   `Deferred` completion, a callback, a join, an interruption: Effect 4
 *   resumes those synchronously, in the stack of whoever completes them), the
 *   runner answers "yield": the resumed fiber's first act is to schedule its
 *   continuation as a task of its own. So every wake-up goes through the ready
 *   list, and its order is a scheduling choice like any other.
 * - Later operations are preemption points: the chooser may preempt the
 *   running fiber there (only when another task is ready).
 * - The first two operations of a task (the resume and the operation it
 *   resumes) are never preempted, so every task makes progress (preempting
 *   them is what made `SeededScheduler` livelock).
 *
 * When nothing is ready it moves the clock to the next timer; with no timer
 * and nothing awaited outside the bubble, the live fibers are deadlocked.
 * When the root's body ends, the remaining tasks run (without moving time);
 * whatever is still alive then is a leak.
 *
 * Not explored: code inside one operation (plain JavaScript between two
 * `yield*`s is atomic), fibers with another scheduler or with
 * `Scheduler.PreventSchedulerYield`, and the timing of external events.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Scheduler from "effect/Scheduler"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { VirtualClock } from "./clock.ts"
import { DeadlockError, DivergedError, LeakError, type LiveFiber, StepLimitError } from "./errors.ts"
import { type FiberRecord, forwardingMetrics, Registry } from "./registry.ts"
import * as Schedule from "./schedule.ts"
import * as Waits from "./waits.ts"

/** A task in the ready list. @internal */
export interface Task {
  readonly run: () => void
  /** The fiber the task belongs to (for wake-up tasks, the fiber that scheduled them). */
  readonly owner: FiberRecord
  readonly seq: number
}

/** What a chooser may ask of the runner. @internal */
export interface Control {
  readonly registry: Registry
  /** Stops the run: the schedule being replayed does not match the program. */
  readonly diverge: (reason: string) => void
}

/**
 * The scheduling policy of a run. Every decision that differs from the
 * default (oldest task first, no preemption, no fault) is recorded.
 *
 * @internal
 */
export interface Chooser {
  /** Index of the task to run next (called with at least two ready tasks). */
  readonly pick: (ready: ReadonlyArray<Task>, step: number) => number
  /** Whether to preempt `running` before its operation number `ops` (others are ready). */
  readonly preempt: (running: FiberRecord, ops: number, ready: ReadonlyArray<Task>, step: number) => boolean
  /** Whether it may interrupt fibers (then `interrupt` is asked before each step). */
  readonly faults: boolean
  /** A fiber to interrupt before step `step`, if any. */
  readonly interrupt: (candidates: ReadonlyArray<FiberRecord>, step: number) => FiberRecord | undefined
  /** A fiber record was made (PCT gives it a priority). */
  readonly onRecord: (record: FiberRecord) => void
  /** A step ended; `owner` ran `ops` operations in it (0: it did not run). */
  readonly endStep: (step: number, owner: FiberRecord, ops: number) => void
  /** The run ended after `steps` steps. */
  readonly end: (steps: number) => void
}

/** The default policy. @internal */
export const fifo: Chooser = {
  faults: false,
  pick: () => 0,
  preempt: () => false,
  interrupt: () => undefined,
  onRecord: () => {},
  endStep: () => {},
  end: () => {}
}

/** @internal */
export interface Config {
  /** Seed of the program's `Random` service. */
  readonly seed: number
  readonly chooser: (control: Control) => Chooser
  readonly maxSteps: number
  /** Real milliseconds to wait for a wake-up when only unrecognised callbacks are pending. */
  readonly grace: number
  readonly forkSites: boolean
  /** Record a readable trace (costs a little per step). */
  readonly trace: boolean
  /** Check for leaks when the root's body has ended. */
  readonly leaks: boolean
  /**
   * `true`: a fiber resumed inside another fiber's task runs there at once,
   * as Effect's runtime does (wake-up order not explored). `false`: it waits
   * for a turn of its own.
   */
  readonly inlineWakeups: boolean
}

/** How one run of a bubble went. @internal */
export interface RunResult<A, E> {
  /** The body's exit, when it got that far. */
  readonly exit: Exit.Exit<A, E> | undefined
  readonly failure: DeadlockError | LeakError | StepLimitError | DivergedError | undefined
  readonly schedule: Schedule.Schedule
  readonly trace: ReadonlyArray<string>
  readonly steps: number
  readonly ops: number
  readonly fibers: number
}

type Phase = "body" | "settle" | "closing" | "finished"

// Operations one task may run before the runner makes its fiber yield
// (Effect's default scheduler does the same after 2048): a busy fiber cannot
// hold the loop forever.
const maxSliceOps = 10_000
// Tasks run per macrotask before the loop lets the event loop turn.
const tasksPerTurn = 4_000

/** @internal */
export class Runner<A, E> implements Scheduler.Scheduler, Scheduler.SchedulerDispatcher {
  readonly executionMode = "async" as const
  readonly registry = new Registry()
  readonly clock: VirtualClock
  private readonly chooser: Chooser
  private readonly config: Config
  private readonly ready: Array<Task> = []
  private current: Task | undefined = undefined
  private started = false
  private sliceOps = 0
  private preempted = false
  private woke: Array<FiberRecord> = []
  private marker: FiberRecord | undefined = undefined
  private pendingChild: FiberRecord | undefined = undefined
  private seq = 0
  private step = 0
  private ops = 0
  private phase: Phase = "body"
  private driving = false
  private driveScheduled = false
  private graceTimer: ReturnType<typeof setTimeout> | undefined = undefined
  private graceExpired = false
  private closingRounds = 0
  private root: FiberRecord | undefined = undefined
  private bodyExit: Exit.Exit<A, E> | undefined = undefined
  private rootResume: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  private failure: RunResult<A, E>["failure"] = undefined
  private readonly deviations: Array<Schedule.Deviation> = []
  private readonly traceLines: Array<string> = []
  private onFinish: ((result: RunResult<A, E>) => void) | undefined = undefined
  // Stands for tasks scheduled from outside any fiber of the bubble.
  private readonly outside: FiberRecord = {
    n: -1,
    fiber: undefined,
    parent: undefined,
    startContext: undefined,
    kit: true,
    lastAsync: undefined,
    ended: true,
    sleepUntil: undefined,
    ready: 0,
    turns: 0,
    inlineOps: 0,
    priority: 0
  }

  constructor(config: Config, live: Clock.Clock) {
    this.config = config
    this.clock = new VirtualClock(live)
    this.chooser = config.chooser({ registry: this.registry, diverge: (reason) => this.diverge(reason) })
    this.registry.onRecord = (record) => this.chooser.onRecord(record)
    this.registry.accepts = (fiber) => fiber.getRef(Scheduler.Scheduler) === this
  }

  // --- Scheduler ---------------------------------------------------------------

  shouldYield(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    if (fiber.currentOpCount <= 1) return this.onRunLoop(fiber)
    const task = this.current
    if (task === undefined) return false
    if (task.owner.fiber !== fiber) return this.nestedOp(fiber)
    this.sliceOps++
    this.ops++
    if (this.sliceOps >= maxSliceOps) return this.yieldRunning()
    // Operations 1 and 2 of a run loop are the resume and the operation it
    // resumes: preempting them would undo the resume (a livelock).
    if (this.sliceOps < 3 || this.ready.length === 0 || !this.exploring()) return false
    if (!this.chooser.preempt(task.owner, this.sliceOps, this.ready, this.step)) return false
    this.deviations.push(Schedule.preempt(task.owner.n, task.owner.turns, this.sliceOps))
    this.preempted = true
    return this.yieldRunning()
  }

  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return this
  }

  scheduleTask(task: () => void, _priority: number): void {
    let owner: FiberRecord
    if (this.marker !== undefined) {
      owner = this.marker
      this.marker = undefined
    } else if (this.pendingChild !== undefined) {
      owner = this.pendingChild
      this.pendingChild = undefined
    } else {
      const fiber = Fiber.getCurrent()
      owner = (fiber === undefined ? undefined : this.registry.get(fiber)) ?? this.outside
    }
    owner.ready++
    this.ready.push({ run: task, owner, seq: this.seq++ })
    this.wake()
  }

  flush(): void {
    if (!this.driving) this.drive()
  }

  // A run loop starts: either the task's own fiber, or a fiber resumed (or
  // started) inside another fiber's task, which must wait for its own turn.
  private onRunLoop(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    const task = this.current
    let record = this.registry.get(fiber)
    // How a fiber seen for the first time came to run: `started` at once (a
    // fork with `startImmediately`, `runForkWith`), or `interrupted` before its
    // start task ran.
    let firstRun: "started" | "interrupted" | undefined = undefined
    if (record === undefined) {
      if (task !== undefined && !this.started && task.owner.fiber === undefined && task.owner !== this.outside) {
        record = this.registry.bind(task.owner, fiber)
      } else if (this.pendingChild !== undefined) {
        record = this.registry.bind(this.pendingChild, fiber)
        this.pendingChild = undefined
        firstRun = "started"
      } else {
        const waiting = this.registry.unstarted(fiber.context)
        record = waiting !== undefined ? this.registry.bind(waiting, fiber) : this.registry.recordOf(fiber)
        firstRun = waiting !== undefined ? "interrupted" : "started"
      }
    }
    record.inlineOps = 0
    if (task !== undefined && !this.started && task.owner === record) {
      this.started = true
      record.turns++
      this.sliceOps = 1
      this.ops++
      return false
    }
    if (task === undefined) {
      this.marker = record
      return true
    }
    this.woke.push(record)
    // A fiber's first run inside another fiber's task is a fork started at
    // once or an interruption before its start task ran. It runs there, as in
    // Effect's runtime: deferring it would let the start task run the fiber's
    // effect a second time. A fork started at once (and, with inline
    // wake-ups, a woken fiber) can still be preempted after its first
    // operations, like a turn of its own.
    if (firstRun === "interrupted") return false
    if (firstRun === "started" || this.config.inlineWakeups) {
      record.turns++
      record.inlineOps = 1
      this.ops++
      return false
    }
    this.marker = record
    return true
  }

  // An operation of a fiber running inside another fiber's task (started at
  // once, or woken inline): it may be preempted like a turn of its own.
  private nestedOp(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    const record = this.registry.get(fiber)
    if (record === undefined || record.inlineOps === 0) return false
    record.inlineOps++
    this.ops++
    // Preempting it always lets someone else run: at least the fiber whose
    // task it runs in, which goes on when it yields.
    if (record.inlineOps < 3 || !this.exploring()) return false
    if (!this.chooser.preempt(record, record.inlineOps, [...this.ready, this.current!], this.step)) return false
    this.deviations.push(Schedule.preempt(record.n, record.turns, record.inlineOps))
    record.inlineOps = 0
    this.marker = record
    return true
  }

  private yieldRunning(): boolean {
    this.marker = this.current!.owner
    return true
  }

  private exploring(): boolean {
    return this.phase === "body" || this.phase === "settle"
  }

  // --- Fiber accounting ------------------------------------------------------

  /** The metrics hook of the bubble's fibers: a fiber is created (it runs later). */
  metrics(outer: Metric.FiberRuntimeMetricsService | undefined): Metric.FiberRuntimeMetricsService {
    return forwardingMetrics(outer, (context) => {
      // Fibers given another scheduler are not the bubble's.
      if (Context.get(context, Scheduler.Scheduler) !== this) return
      const current = Fiber.getCurrent()
      const parent = (current === undefined ? undefined : this.registry.get(current)) ?? this.current?.owner
      this.pendingChild = this.registry.create(parent === this.outside ? undefined : parent, context)
    }, () => {})
  }

  // --- Running -----------------------------------------------------------------

  /** Starts `body` as the root of the bubble; `onFinish` gets the result once. */
  start(
    body: Effect.Effect<A, E, Scope.Scope>,
    context: Context.Context<never>,
    onFinish: (result: RunResult<A, E>) => void
  ): void {
    this.onFinish = onFinish
    const outerTracer = Context.get(context, Tracer.Tracer)
    const outerMetrics = Context.get(context, Metric.FiberRuntimeMetrics)
    const ctx = context.pipe(
      Context.add(Scheduler.Scheduler, this as Scheduler.Scheduler),
      Context.add(Clock.Clock, this.clock as Clock.Clock),
      Context.add(Metric.FiberRuntimeMetrics, this.metrics(outerMetrics)),
      Context.add(Tracer.Tracer, this.registry.tracer(outerTracer))
    )
    const root = Effect.scoped(body).pipe(
      Random.withSeed(this.config.seed),
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.callback<void>(Waits.tagRegister((resume: (effect: Effect.Effect<void>) => void) => {
          this.bodyDone(exit, resume)
        }, Waits.bodyEnded))
      )
    )
    const fiber = Effect.runForkWith(ctx)(root)
    this.root = this.registry.get(fiber as Fiber.Fiber<unknown, unknown>)
    fiber.addObserver(() => this.wake())
  }

  /** Stops everything (the caller was interrupted). */
  abort(): void {
    if (this.phase === "finished") return
    this.onFinish = undefined
    this.close()
  }

  private wake() {
    if (this.graceTimer !== undefined) {
      clearTimeout(this.graceTimer)
      this.graceTimer = undefined
    }
    this.graceExpired = false
    if (this.driving || this.driveScheduled) return
    this.driveScheduled = true
    // A microtask: the loop runs as soon as whoever woke it is done. Long runs
    // still give the event loop a turn every `tasksPerTurn` tasks.
    queueMicrotask(() => this.drive())
  }

  private drive() {
    this.driveScheduled = false
    if (this.driving) return
    this.driving = true
    try {
      for (let budget = tasksPerTurn; budget > 0; budget--) {
        if (this.ready.length === 0 && !this.idle()) return
        if (this.ready.length > 0) this.runOne()
      }
      if (!this.driveScheduled) {
        this.driveScheduled = true
        setImmediate(() => this.drive())
      }
    } finally {
      this.driving = false
    }
  }

  private runOne() {
    this.step++
    const decisions = this.deviations.length
    if (this.step > this.config.maxSteps && this.exploring()) {
      this.fail(
        new StepLimitError({
          steps: this.config.maxSteps,
          time: this.clock.currentTimeMillisUnsafe(),
          fibers: this.liveInfo(),
          forkSites: this.config.forkSites
        })
      )
    }
    if (this.chooser.faults && this.exploring()) this.maybeInterrupt()
    const index = this.exploring() ? this.chooser.pick(this.ready, this.step) : 0
    const task = this.ready[index] ?? this.ready[0]!
    if (task !== this.ready[0]) {
      const nth = this.ready.filter((t) => t.owner === task.owner).indexOf(task)
      this.deviations.push(Schedule.pick(this.step, task.owner.n, nth))
    }
    this.ready.splice(this.ready.indexOf(task), 1)
    task.owner.ready--
    this.current = task
    this.started = false
    this.sliceOps = 0
    this.preempted = false
    this.woke = []
    try {
      task.run()
    } finally {
      this.current = undefined
    }
    // A start task whose fiber had already ended (interrupted before it
    // started) starts nothing: its record must not stay "not started".
    if (task.owner.fiber === undefined && task.owner !== this.outside && task.owner.ready === 0) {
      task.owner.ended = true
    }
    if (this.exploring()) this.chooser.endStep(this.step, task.owner, this.started ? this.sliceOps : 0)
    if (this.config.trace) this.traceStep(task, this.deviations.length > decisions)
  }

  private maybeInterrupt() {
    const candidates = this.registry.live().filter((r) => r !== this.root && !r.kit && r.fiber !== undefined)
    if (candidates.length === 0) return
    const victim = this.chooser.interrupt(candidates, this.step)
    if (victim === undefined || victim.fiber === undefined) return
    this.deviations.push(Schedule.interrupt(this.step, victim.n))
    if (this.config.trace) this.traceLines.push(`${pad(this.step)}  fault: interrupt ${this.name(victim)}`)
    victim.fiber.interruptUnsafe()
  }

  // Nothing is ready. Returns true when the runner made new work.
  private idle(): boolean {
    switch (this.phase) {
      case "finished":
        return false
      case "body":
        return this.idleBody()
      case "settle":
        return this.idleSettle()
      case "closing":
        return this.idleClosing()
    }
  }

  private idleBody(): boolean {
    const live = this.registry.live().filter((r) => r !== this.root || this.bodyExit === undefined)
    const waits = live.map((r) => this.registry.waitOf(r))
    if (waits.some(Waits.isExternal)) return false
    if (this.clock.pending() > 0) return this.advanceClock()
    if (waits.some((w) => w._tag === "Callback") && !this.graceExpired) {
      if (this.graceTimer === undefined) {
        this.graceTimer = setTimeout(() => {
          this.graceTimer = undefined
          this.graceExpired = true
          if (!this.driving && !this.driveScheduled) {
            this.driveScheduled = true
            setImmediate(() => this.drive())
          }
        }, this.config.grace)
        this.graceTimer.unref?.()
      }
      return false
    }
    this.fail(
      new DeadlockError({
        fibers: this.liveInfo(),
        time: this.clock.currentTimeMillisUnsafe(),
        forkSites: this.config.forkSites
      })
    )
    return true
  }

  private advanceClock(): boolean {
    const before = this.ready.length
    const from = this.clock.currentTimeMillisUnsafe()
    this.woke = []
    this.clock.advance()
    if (this.config.trace) {
      const woke = this.ready.slice(before).map((t) => this.name(t.owner)).join(", ")
      this.traceLines.push(`      clock ${from} → ${this.clock.currentTimeMillisUnsafe()} ms: woke ${woke}`)
    }
    return true
  }

  private bodyDone(exit: Exit.Exit<A, E>, resume: (effect: Effect.Effect<void>) => void) {
    this.bodyExit = exit
    this.rootResume = resume
    if (this.phase === "body") this.phase = "settle"
  }

  // The body has ended and nothing is ready: whatever is alive now leaked.
  private idleSettle(): boolean {
    const leaked = this.registry.live().filter((r) => r !== this.root && !r.kit)
    if (leaked.length > 0 && this.config.leaks && this.bodyExit !== undefined && Exit.isSuccess(this.bodyExit)) {
      const byLabel: Record<string, number> = {}
      for (const r of leaked) {
        const label = this.registry.label(r) ?? "unlabeled"
        byLabel[label] = (byLabel[label] ?? 0) + 1
      }
      this.failure = new LeakError({
        live: leaked.length,
        byLabel,
        fibers: leaked.map((r) => this.registry.info(r)),
        forkSites: this.config.forkSites
      })
    }
    this.close()
    return true
  }

  // Interrupts every fiber still alive and lets them finish; the root is
  // resumed (or interrupted) last.
  private close() {
    this.phase = "closing"
    for (const record of this.registry.live()) {
      if (record === this.root) continue
      record.fiber?.interruptUnsafe()
    }
    this.resumeRoot()
    this.wake()
  }

  private resumeRoot() {
    const resume = this.rootResume
    this.rootResume = undefined
    if (resume !== undefined) resume(Effect.void)
    else if (this.root?.fiber !== undefined && this.bodyExit === undefined) this.root.fiber.interruptUnsafe()
  }

  private idleClosing(): boolean {
    const live = this.registry.live()
    if (live.length > 0 && this.closingRounds++ < 100) {
      // Finalizers may sleep; anything else still alive is interrupted again.
      if (this.clock.pending() > 0) return this.advanceClock()
      for (const record of live) record.fiber?.interruptUnsafe()
      if (this.ready.length > 0) return true
    }
    this.finish()
    return false
  }

  private fail(error: NonNullable<RunResult<A, E>["failure"]>) {
    if (this.failure === undefined) this.failure = error
    if (this.phase === "body" || this.phase === "settle") this.close()
  }

  private diverge(reason: string) {
    this.fail(
      new DivergedError({ step: this.step, reason, schedule: Schedule.format(this.schedule()) })
    )
  }

  private schedule(): Schedule.Schedule {
    return { seed: this.config.seed, deviations: this.deviations.slice(), steps: this.step }
  }

  private finish() {
    if (this.phase === "finished") return
    this.phase = "finished"
    this.chooser.end(this.step)
    const onFinish = this.onFinish
    this.onFinish = undefined
    if (onFinish === undefined) return
    const result: RunResult<A, E> = {
      exit: this.bodyExit,
      failure: this.failure,
      schedule: this.schedule(),
      trace: this.traceLines,
      steps: this.step,
      ops: this.ops,
      fibers: this.registry.count
    }
    // Deliver outside the bubble's loop.
    setImmediate(() => onFinish(result))
  }

  // --- Reports -----------------------------------------------------------------

  private name(record: FiberRecord): string {
    if (record === this.outside) return "outside"
    const label = this.registry.label(record)
    return label !== undefined ? `#${record.n} ${label}` : record === this.root ? `#${record.n} root` : `#${record.n}`
  }

  private waitOf(record: FiberRecord): Waits.Wait {
    if (record.ready > 0) return Waits.ready
    return this.registry.waitOf(record)
  }

  private liveInfo(): Array<LiveFiber> {
    return this.registry.live().map((r) => {
      const info = this.registry.info(r, this.waitOf(r))
      return r === this.root && info.label === undefined ? { ...info, label: "root" } : info
    })
  }

  private traceStep(task: Task, decided: boolean) {
    const owner = task.owner
    let end: string
    if (!this.started) end = owner === this.outside || owner.fiber !== undefined ? "wake-up task" : "nothing to run"
    else {
      const exit = owner.fiber?.pollUnsafe()
      if (exit !== undefined) {
        end = Exit.isSuccess(exit)
          ? "ended"
          : exit.cause.reasons.every((r) => r._tag === "Interrupt")
          ? "ended (interrupted)"
          : "ended (failed)"
      } else if (this.preempted) end = "preempted"
      else if (owner.ready > 0) end = "yielded"
      else end = `waiting on ${Waits.describe(this.registry.waitOf(owner))}`
    }
    const woke = this.woke.length === 0 ? "" : `; woke ${this.woke.map((r) => this.name(r)).join(", ")}`
    const ops = this.started ? `${this.sliceOps} op${this.sliceOps === 1 ? "" : "s"}` : "-"
    const mark = decided ? "*" : " "
    this.traceLines.push(`${pad(this.step)}${mark} ${this.name(owner).padEnd(18)} ${ops.padStart(7)}  ${end}${woke}`)
  }
}

const pad = (n: number) => String(n).padStart(5)

/**
 * Runs `body` in a bubble and returns how it went (never fails).
 *
 * @internal
 */
export const runOnce = <A, E, R>(
  body: Effect.Effect<A, E, R>,
  config: Config
): Effect.Effect<RunResult<A, E>, never, Exclude<R, Scope.Scope>> =>
  Effect.flatMap(
    Effect.context<Exclude<R, Scope.Scope>>(),
    (context) =>
      // Tagged external: a bubble running in a bubble keeps the outer one waiting.
      Effect.callback<RunResult<A, E>>(Waits.tagRegister((resume: (effect: Effect.Effect<RunResult<A, E>>) => void) => {
        const runner = new Runner<A, E>(config, Context.get(Context.empty(), Clock.Clock))
        runner.start(
          body as Effect.Effect<A, E, Scope.Scope>,
          context as Context.Context<never>,
          (result) => resume(Effect.succeed(result))
        )
        return Effect.sync(() => runner.abort())
      }, Waits.external("a bubble run")))
  )
