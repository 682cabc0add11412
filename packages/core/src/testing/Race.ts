/**
 * A race runner: run a concurrent program under many schedules, and when one
 * fails, report it as a short schedule string that replays exactly, shrunk to
 * as few unusual decisions as possible, with a readable trace.
 *
 * Every run is a bubble (see `Bubble`): the program's fibers run one task at
 * a time on the bubble's scheduler, and a strategy decides which ready task
 * runs next and whether to preempt the running fiber between two of its
 * operations. Wake-ups (a `Deferred` completed, a queue offer, a join, a
 * callback, an interruption, a timer) are tasks too, so the order in which
 * woken fibers continue is explored as well.
 *
 * Strategies:
 * - `random` (default): a random ready task at each step, and a preemption
 *   with probability `preemption` (default 0.1) wherever another task is
 *   ready. Finds most races quickly; rarely lets one fiber run far ahead.
 * - `pct`: probabilistic concurrency testing. Fibers get random priorities;
 *   the highest-priority ready fiber runs; at `depth - 1` random points the
 *   running fiber drops below all others. A bug needing `d` ordering
 *   constraints is found per run with probability at least `1/(n·k^(d-1))`.
 * - `exhaustive`: every schedule with at most `preemptionBound` preemptions
 *   (default 2), depth first, up to `runs` schedules; the report says how many
 *   distinct schedules were explored and whether that was all of them.
 *
 * What is explored and what is not:
 * - explored: the order of ready tasks (forks, yields, wake-ups of every
 *   kind), preemption between any two operations of a fiber, the order of
 *   fibers woken by the clock at the same instant, and seeded interruptions
 *   (`faults.interrupt`);
 * - not explored: interleavings inside one operation (the JavaScript between
 *   two `yield*`s runs atomically, as it does in production), the timing of
 *   external events (promises, real I/O), and fibers running on another
 *   scheduler. Exhaustive search is complete only within its bound.
 *
 * A failing check fails with {@link RaceError}: the seed, the schedule
 * (`s123 5>2 1.2^4 =41`), a trace and the reason. `replay(program, schedule)`
 * reruns it and fails with `DivergedError` ("diverged at step k") if the
 * program no longer matches; setting `SLUICE_SCHEDULE` makes every `check`
 * replay that schedule instead of exploring.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import { check as checkOption } from "../internal/options.ts"
import type { BubbleError, Options as BubbleOptions } from "./Bubble.ts"
import { config as bubbleConfig } from "./internal/config.ts"
import * as Errors from "./internal/errors.ts"
import { type Config, runOnce, type RunResult } from "./internal/runner.ts"
import * as Schedule from "./internal/schedule.ts"
import * as Strategies from "./internal/strategies.ts"

/**
 * The environment variable that makes every {@link check} replay a schedule
 * (`SLUICE_SCHEDULE='s123 5>2 1.2^4 =41'`). Prefix it with a check's `name` and
 * `=` to replay in that check only (`SLUICE_SCHEDULE='lost-update=s123 …'`).
 *
 * @since 0.2.0
 * @category replay
 */
export const environmentVariable = "SLUICE_SCHEDULE"

/**
 * A replayed schedule no longer matches the program.
 *
 * @since 0.2.0
 * @category errors
 */
export const DivergedError = Errors.DivergedError

/**
 * @since 0.2.0
 * @category errors
 */
export type DivergedError = Errors.DivergedError

/**
 * A schedule string that cannot be read.
 *
 * @since 0.2.0
 * @category errors
 */
export const InvalidScheduleError = Errors.InvalidScheduleError

/**
 * @since 0.2.0
 * @category errors
 */
export type InvalidScheduleError = Errors.InvalidScheduleError

// -----------------------------------------------------------------------------
// Strategies
// -----------------------------------------------------------------------------

/**
 * How a check explores schedules. Build with {@link random}, {@link pct} or
 * {@link exhaustive}.
 *
 * @since 0.2.0
 * @category strategies
 */
export type Strategy =
  | { readonly _tag: "Random"; readonly preemption: number }
  | { readonly _tag: "Pct"; readonly depth: number }
  | { readonly _tag: "Exhaustive"; readonly preemptionBound: number }

/**
 * Random schedules: a random ready task at each step, and a preemption with
 * probability `preemption` (0 to 1, default 0.1) at each operation where
 * another task is ready.
 *
 * @example
 * ```ts
 * import { Effect, Ref } from "effect"
 * import { Race } from "@sluice/core/testing"
 *
 * const counter = Effect.gen(function*() {
 *   const ref = yield* Ref.make(0)
 *   yield* Effect.all([Ref.update(ref, (n) => n + 1), Ref.update(ref, (n) => n + 1)], { concurrency: "unbounded" })
 *   return yield* Ref.get(ref)
 * })
 * const check = Race.check(counter, { strategy: Race.random({ preemption: 0.3 }), invariant: (n) => n === 2 })
 * ```
 *
 * @since 0.2.0
 * @category strategies
 */
export const random = (options?: { readonly preemption?: number | undefined }): Strategy => {
  const preemption = options?.preemption ?? 0.1
  checkOption(
    "Race.random",
    "preemption",
    typeof preemption === "number" && preemption >= 0 && preemption <= 1,
    preemption
  )
  return { _tag: "Random", preemption }
}

/**
 * PCT schedules with bug depth `depth` (default 3): `depth - 1` priority
 * change points per run.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Race } from "@sluice/core/testing"
 *
 * const check = (program: Effect.Effect<number>) =>
 *   Race.check(program, { strategy: Race.pct({ depth: 2 }), runs: 500, invariant: (n) => n >= 0 })
 * ```
 *
 * @since 0.2.0
 * @category strategies
 */
export const pct = (options?: { readonly depth?: number | undefined }): Strategy => {
  const depth = options?.depth ?? 3
  checkOption("Race.pct", "depth", Number.isInteger(depth) && depth >= 1, depth)
  return { _tag: "Pct", depth }
}

/**
 * Every schedule with at most `preemptionBound` preemptions (default 2),
 * depth first.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Race } from "@sluice/core/testing"
 *
 * // Every schedule with at most one preemption.
 * const check = (program: Effect.Effect<number>) =>
 *   Race.check(program, { strategy: Race.exhaustive({ preemptionBound: 1 }) })
 * ```
 *
 * @since 0.2.0
 * @category strategies
 */
export const exhaustive = (options?: { readonly preemptionBound?: number | undefined }): Strategy => {
  const preemptionBound = options?.preemptionBound ?? 2
  checkOption(
    "Race.exhaustive",
    "preemptionBound",
    Number.isInteger(preemptionBound) && preemptionBound >= 0,
    preemptionBound
  )
  return { _tag: "Exhaustive", preemptionBound }
}

const strategyOf = (s: CheckOptions<unknown>["strategy"]): Strategy =>
  s === undefined || s === "random"
    ? random()
    : s === "pct"
    ? pct()
    : s === "exhaustive"
    ? exhaustive()
    : s

const strategyName = (s: Strategy): string =>
  s._tag === "Random"
    ? `random (preemption ${s.preemption})`
    : s._tag === "Pct"
    ? `pct (depth ${s.depth})`
    : `exhaustive (preemption bound ${s.preemptionBound})`

// -----------------------------------------------------------------------------
// Results and errors
// -----------------------------------------------------------------------------

/**
 * Why a run failed: the program failed or died, its result broke the
 * invariant, or the bubble found a deadlock, a leak or no end.
 *
 * @since 0.2.0
 * @category models
 */
export type Failure =
  | { readonly _tag: "Failed"; readonly cause: Cause.Cause<unknown> }
  | { readonly _tag: "Violated"; readonly message: string }
  | { readonly _tag: "Bubble"; readonly error: BubbleError }

const describeFailure = (failure: Failure): string =>
  failure._tag === "Failed"
    ? `the program failed: ${Cause.pretty(failure.cause)}`
    : failure._tag === "Violated"
    ? `the invariant does not hold: ${failure.message}`
    : failure.error.message

const sameKind = (a: Failure, b: Failure) =>
  a._tag === b._tag && (a._tag !== "Bubble" || a.error._tag === (b as typeof a).error._tag)

const traceText = (trace: ReadonlyArray<string>): string => {
  if (trace.length <= 80) return trace.join("\n")
  return [...trace.slice(0, 20), `  … ${trace.length - 70} steps …`, ...trace.slice(-50)].join("\n")
}

/**
 * A check found a schedule under which the program fails.
 *
 * `schedule` replays it (`Race.replay(program, error.schedule)`, or
 * `SLUICE_SCHEDULE`); `trace` shows which fiber ran at each step and how the
 * step ended.
 *
 * @since 0.2.0
 * @category errors
 */
export class RaceError extends Data.TaggedError("RaceError")<{
  /** Why the run failed. */
  readonly failure: Failure
  /** The check's seed. */
  readonly seed: number
  /** The failing run (1-based) and its own seed. */
  readonly run: number
  readonly runSeed: number
  readonly strategy: string
  /** The shrunk schedule, printable and replayable. */
  readonly schedule: string
  /** The schedule as first found, before shrinking. */
  readonly original: string
  /** Runs spent shrinking. */
  readonly shrinkRuns: number
  /** One line per scheduling step of the shrunk schedule. */
  readonly trace: ReadonlyArray<string>
  /** Whether replaying the shrunk schedule failed the same way (false: the program is not deterministic). */
  readonly reproduced: boolean
}> {
  override get message(): string {
    const found = this.run === 0
      ? `replaying schedule ${this.schedule}`
      : `found at run ${this.run} (strategy ${this.strategy}, seed ${this.seed})`
    const shrunk = this.original === this.schedule
      ? ""
      : ` (shrunk from ${JSON.stringify(this.original)} in ${this.shrinkRuns} runs)`
    const warn = this.reproduced
      ? ""
      : "\nwarning: the shrunk schedule did not fail again on replay: is the program deterministic? (Race.determinism)"
    return `${
      describeFailure(this.failure)
    }\n${found}\nschedule: ${this.schedule}${shrunk}\nreplay: ${environmentVariable}='${this.schedule}' (or Race.replay(program, ${
      JSON.stringify(this.schedule)
    }))${warn}\ntrace:\n${traceText(this.trace)}`
  }
}

/**
 * The same seed gave two different runs: the program depends on something the
 * kit does not control (`Math.random`, `Date.now`, real I/O, global state).
 *
 * @since 0.2.0
 * @category errors
 */
export class NondeterminismError extends Data.TaggedError("NondeterminismError")<{
  readonly seed: number
  /** The first line (1-based) of the traces that differs. */
  readonly line: number
  readonly first: string
  readonly second: string
}> {
  override get message(): string {
    return `two runs with seed ${this.seed} differ at trace line ${this.line}:\n  first:  ${this.first}\n  second: ${this.second}\n(Math.random, Date.now, real I/O or state shared between runs?)`
  }
}

/**
 * What a passing check did.
 *
 * @since 0.2.0
 * @category models
 */
export interface Report {
  /** Runs made. */
  readonly runs: number
  /** Distinct schedules among them. */
  readonly schedules: number
  /** For `exhaustive`: every schedule within the bound was explored. */
  readonly complete: boolean
  readonly strategy: string
  readonly seed: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CheckOptions<A> extends BubbleOptions {
  /** Runs to make (for `exhaustive`: the most schedules to explore). Default 100 (exhaustive: 10,000). */
  readonly runs?: number | undefined
  /** Seed of the whole check; each run derives its own. Default 1. */
  readonly seed?: number | undefined
  /** Default `"random"`. */
  readonly strategy?: "random" | "pct" | "exhaustive" | Strategy | undefined
  /** Must hold for the program's result: return `false` or throw (e.g. `expect`) when it does not. */
  readonly invariant?: ((value: A) => boolean | void) | undefined
  /**
   * Seeded faults: `interrupt` is the probability, per step, of interrupting a
   * random fiber (never the root). Random and PCT strategies only: exhaustive
   * search does not inject faults.
   */
  readonly faults?: { readonly interrupt?: number | undefined } | undefined
  /** Most runs spent shrinking a failing schedule. Default 300; `false` turns shrinking off. */
  readonly shrink?: number | false | undefined
  /** Name matched by `SLUICE_SCHEDULE='name=…'`. */
  readonly name?: string | undefined
}

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

const judge = <A>(result: RunResult<A, unknown>, invariant: CheckOptions<A>["invariant"]): Failure | undefined => {
  if (result.failure !== undefined && result.failure._tag !== "DivergedError") {
    return { _tag: "Bubble", error: result.failure }
  }
  const exit = result.exit
  if (exit === undefined) return { _tag: "Failed", cause: Cause.interrupt() }
  if (Exit.isFailure(exit)) return { _tag: "Failed", cause: exit.cause }
  if (invariant === undefined) return undefined
  try {
    const verdict: unknown = invariant(exit.value)
    if (verdict === false) return { _tag: "Violated", message: `it returned false for ${show(exit.value)}` }
    // An Effect (or anything else) would be truthy and pass unseen.
    if (verdict !== true && verdict !== undefined) {
      return {
        _tag: "Violated",
        message: `it must return a boolean or nothing, or throw; it returned ${show(verdict)}`
      }
    }
    return undefined
  } catch (error) {
    return { _tag: "Violated", message: error instanceof Error ? error.message : String(error) }
  }
}

const show = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const environmentSchedule = (name: string | undefined): string | undefined => {
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
    ?.[environmentVariable]
  if (value === undefined || value.trim() === "") return undefined
  const m = /^([^=\s]+)=(.*)$/.exec(value.trim())
  if (m === null) return value
  return m[1] === name ? m[2] : undefined
}

interface Settings<A> {
  readonly base: Config
  readonly invariant: CheckOptions<A>["invariant"]
  readonly shrink: number
}

const settings = <A>(where: string, options: CheckOptions<A> | undefined): Settings<A> => {
  const shrink = options?.shrink === false ? 0 : options?.shrink ?? 300
  checkOption(where, "shrink", Number.isInteger(shrink) && shrink >= 0, options?.shrink)
  return { base: bubbleConfig(where, options, false), invariant: options?.invariant, shrink }
}

const runWith = <A, E, R>(program: Effect.Effect<A, E, R>, base: Config, change: Partial<Config>) =>
  runOnce(program, { ...base, ...change })

// Replays `schedule` strictly with a trace, and builds the error of a failing run.
const conclude = <A, E, R>(
  program: Effect.Effect<A, E, R>,
  s: Settings<A>,
  found: { readonly failure: Failure; readonly schedule: Schedule.Schedule; readonly original: Schedule.Schedule },
  meta: { readonly seed: number; readonly run: number; readonly runSeed: number; readonly strategy: string },
  shrinkRuns: number
) =>
  Effect.gen(function*() {
    const result = yield* runWith(program, s.base, {
      seed: found.schedule.seed,
      chooser: Strategies.replay(found.schedule, true),
      trace: true
    })
    const again = judge(result, s.invariant)
    const reproduced = again !== undefined && sameKind(again, found.failure)
    return new RaceError({
      failure: reproduced ? again : found.failure,
      ...meta,
      schedule: Schedule.format(found.schedule),
      original: Schedule.format(found.original),
      shrinkRuns,
      trace: result.trace,
      reproduced
    })
  })

// Shrinking: first drop chunks of decisions while the run still fails the same
// way (delta debugging, keeping the schedule each run actually followed);
// then look for a failing schedule with fewer preemptions than the best so
// far, by exhaustive search with a smaller bound (as CHESS finds bugs with
// the fewest preemptions); then drop decisions again. Within `s.shrink` runs.
const shrink = <A, E, R>(
  program: Effect.Effect<A, E, R>,
  s: Settings<A>,
  failure: Failure,
  schedule: Schedule.Schedule
) =>
  Effect.gen(function*() {
    let best = schedule
    let runs = 0
    const better = (candidate: Schedule.Schedule) =>
      Schedule.weight(candidate) < Schedule.weight(best) ||
      (Schedule.weight(candidate) === Schedule.weight(best) && (candidate.steps ?? 0) < (best.steps ?? 0))
    const fails = (result: RunResult<A, E>) => {
      const again = judge(result, s.invariant)
      return again !== undefined && sameKind(again, failure)
    }
    const drop = Effect.gen(function*() {
      let improved = true
      while (improved && runs < s.shrink) {
        improved = false
        const n = best.deviations.length
        for (let size = Math.max(1, Math.ceil(n / 2)); !improved && runs < s.shrink; size = size >> 1) {
          for (let at = 0; at < best.deviations.length && !improved && runs < s.shrink; at += size) {
            const candidate: Schedule.Schedule = {
              seed: best.seed,
              deviations: [...best.deviations.slice(0, at), ...best.deviations.slice(at + size)],
              steps: undefined
            }
            runs++
            const result = yield* runWith(program, s.base, {
              seed: best.seed,
              chooser: Strategies.replay(candidate, false)
            })
            if (fails(result) && better(result.schedule)) {
              best = result.schedule
              improved = true
            }
          }
          if (size <= 1) break
        }
      }
    })
    yield* drop
    const preemptions = best.deviations.filter((d) => d._tag !== "Pick").length
    search: for (let bound = 0; bound < preemptions && runs < s.shrink; bound++) {
      const explorer = new Strategies.Explorer(bound)
      while (runs < s.shrink) {
        runs++
        const result = yield* runWith(program, s.base, { seed: best.seed, chooser: explorer.chooser })
        if (result.failure?._tag === "DivergedError") break search
        if (fails(result) && better(result.schedule)) {
          best = result.schedule
          yield* drop
          break search
        }
        if (!explorer.next()) break
      }
    }
    return { schedule: best, runs }
  })

/**
 * Runs `program` under many schedules (see the module documentation) and
 * succeeds with a {@link Report} when every run passes: the program succeeds,
 * `invariant` holds for its result, and the bubble finds no deadlock, leak or
 * endless run. The first failing run is shrunk and reported as a
 * {@link RaceError}.
 *
 * When `SLUICE_SCHEDULE` is set, the check replays that schedule instead.
 *
 * @example
 * ```ts
 * import { Effect, Ref } from "effect"
 * import { Race } from "@sluice/core/testing"
 *
 * // A lost update: two fibers read, then write, the same Ref.
 * const program = Effect.gen(function*() {
 *   const ref = yield* Ref.make(0)
 *   const increment = Effect.flatMap(Ref.get(ref), (n) => Ref.set(ref, n + 1))
 *   yield* Effect.all([increment, increment], { concurrency: "unbounded" })
 *   return yield* Ref.get(ref)
 * })
 * const result = Race.check(program, { runs: 200, seed: 1, strategy: "random", invariant: (n) => n === 2 })
 * // fails with RaceError: "the invariant does not hold: it returned false for 1", schedule "s… 1.1^3 =4"
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const check = <A, E, R>(
  program: Effect.Effect<A, E, R>,
  options?: CheckOptions<A>
): Effect.Effect<Report, RaceError | DivergedError | InvalidScheduleError, Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const s = settings("Race.check", options)
    const strategy = strategyOf(options?.strategy)
    const name = strategyName(strategy)
    const seed = options?.seed ?? 1
    checkOption("Race.check", "seed", Number.isInteger(seed), seed)
    const exhaustiveRun = strategy._tag === "Exhaustive"
    const runs = options?.runs ?? (exhaustiveRun ? 10_000 : 100)
    checkOption("Race.check", "runs", Number.isInteger(runs) && runs >= 1, runs)
    const interrupt = options?.faults?.interrupt ?? 0
    checkOption("Race.check", "faults.interrupt", interrupt >= 0 && interrupt <= 1, interrupt)

    const pinned = environmentSchedule(options?.name)
    if (pinned !== undefined) {
      yield* replay(program, pinned, options)
      return { runs: 1, schedules: 1, complete: false, strategy: `replay of ${pinned}`, seed }
    }

    const explorer = strategy._tag === "Exhaustive" ? new Strategies.Explorer(strategy.preemptionBound) : undefined
    const pctState: Strategies.PctState = { points: 0 }
    const seen = new Set<string>()
    let complete = false
    let run = 0
    while (run < runs) {
      run++
      const runSeed = explorer === undefined ? Strategies.runSeed(seed, run) : seed
      const chooser = strategy._tag === "Random"
        ? Strategies.random(runSeed, strategy.preemption, interrupt)
        : strategy._tag === "Pct"
        ? Strategies.pct(runSeed, strategy.depth, interrupt, pctState)
        : explorer!.chooser
      const result = yield* runWith(program, s.base, { seed: runSeed, chooser })
      if (result.failure?._tag === "DivergedError") return yield* Effect.fail(result.failure)
      seen.add(Schedule.format({ ...result.schedule, steps: undefined }))
      const failure = judge(result, s.invariant)
      if (failure !== undefined) {
        const shrunk = s.shrink > 0
          ? yield* shrink(program, s, failure, result.schedule)
          : { schedule: result.schedule, runs: 0 }
        return yield* Effect.fail(
          yield* conclude(
            program,
            s,
            { failure, schedule: shrunk.schedule, original: result.schedule },
            { seed, run, runSeed, strategy: name },
            shrunk.runs
          )
        )
      }
      if (explorer !== undefined && !explorer.next()) {
        complete = true
        break
      }
    }
    return { runs: run, schedules: seen.size, complete, strategy: name, seed }
  })

/**
 * Reruns `program` under exactly `schedule` (as printed by a failing
 * {@link check}). Fails with `DivergedError` ("diverged at step k") when the
 * program no longer matches the schedule, with {@link RaceError} when the run
 * fails, and succeeds with the program's result otherwise, so a schedule that
 * once failed can be pinned as a regression test.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Race } from "@sluice/core/testing"
 *
 * declare const program: Effect.Effect<number>
 * const regression = Race.replay(program, "s1 1.1^3 =4", { invariant: (n) => n === 2 })
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const replay = <A, E, R>(
  program: Effect.Effect<A, E, R>,
  schedule: string,
  options?: Pick<CheckOptions<A>, "invariant" | keyof BubbleOptions>
): Effect.Effect<A, RaceError | DivergedError | InvalidScheduleError, Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const s = settings("Race.replay", options)
    const parsed = Schedule.parse(schedule)
    if (parsed instanceof Errors.InvalidScheduleError) return yield* Effect.fail(parsed)
    const result = yield* runWith(program, s.base, {
      seed: parsed.seed,
      chooser: Strategies.replay(parsed, true),
      trace: true
    })
    if (result.failure?._tag === "DivergedError") return yield* Effect.fail(result.failure)
    const failure = judge(result, s.invariant)
    if (failure !== undefined) {
      return yield* Effect.fail(
        new RaceError({
          failure,
          seed: parsed.seed,
          run: 0,
          runSeed: parsed.seed,
          strategy: "replay",
          schedule: Schedule.format(parsed),
          original: Schedule.format(parsed),
          shrinkRuns: 0,
          trace: result.trace,
          reproduced: true
        })
      )
    }
    return (result.exit as Exit.Success<A, unknown>).value
  })

/**
 * Runs `program` twice with the same seed and strategy and compares the two
 * traces; fails with {@link NondeterminismError} naming the first line that
 * differs. A `Math.random`, a `Date.now` or real I/O in the program is the
 * usual cause; the bubble seeds `Random` and owns `Clock`, so those are fine.
 *
 * @example
 * ```ts
 * import { Effect, Random } from "effect"
 * import { Race } from "@sluice/core/testing"
 *
 * const fine = Race.determinism(Effect.flatMap(Random.next, (x) => Effect.succeed(x > 0.5)), { seed: 3 })
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const determinism = <A, E, R>(
  program: Effect.Effect<A, E, R>,
  options?: Pick<CheckOptions<A>, "seed" | "strategy" | "faults" | keyof BubbleOptions>
): Effect.Effect<void, NondeterminismError, Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const s = settings("Race.determinism", options)
    const strategy = strategyOf(options?.strategy)
    const seed = options?.seed ?? 1
    const interrupt = options?.faults?.interrupt ?? 0
    const once = Effect.suspend(() => {
      const runSeed = Strategies.runSeed(seed, 1)
      const chooser = strategy._tag === "Random"
        ? Strategies.random(runSeed, strategy.preemption, interrupt)
        : strategy._tag === "Pct"
        ? Strategies.pct(runSeed, strategy.depth, interrupt, { points: 0 })
        : new Strategies.Explorer(strategy.preemptionBound).chooser
      return runWith(program, s.base, { seed: runSeed, chooser, trace: true })
    })
    const first = yield* once
    const second = yield* once
    const a = [...first.trace, `(end: ${describeEnd(first)})`]
    const b = [...second.trace, `(end: ${describeEnd(second)})`]
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i] !== b[i]) {
        return yield* Effect.fail(
          new NondeterminismError({
            seed,
            line: i + 1,
            first: a[i] ?? "(no more steps)",
            second: b[i] ?? "(no more steps)"
          })
        )
      }
    }
  })

const describeEnd = (result: RunResult<unknown, unknown>): string =>
  result.failure !== undefined
    ? result.failure._tag
    : result.exit === undefined
    ? "no exit"
    : Exit.isSuccess(result.exit)
    ? `success ${show(result.exit.value)}`
    : "failure"
