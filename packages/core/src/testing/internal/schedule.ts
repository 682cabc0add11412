/**
 * Schedules: the scheduling decisions of one run, written as their
 * differences from the default order.
 *
 * The default order runs the oldest ready task first and never preempts. A
 * schedule lists only the steps where a run did something else, plus the
 * seed of the run's `Random` service and the number of steps the run took:
 *
 * ```text
 * s7 4>2 2.3^5 9!1 =31
 * ```
 *
 * - `s7`: the program's `Random` is seeded with 7;
 * - `4>2`: at step 4, run a task of fiber #2 (`4>2.1`: its second ready task);
 * - `2.3^5`: preempt fiber #2 before the 5th operation of its 3rd turn (a
 *   turn is one task of that fiber: it runs until it yields, waits, ends or
 *   is preempted);
 * - `9!1`: before step 9, interrupt fiber #1 (a fault);
 * - `=31`: the run took 31 steps (a replay that ends elsewhere diverged).
 *
 * Fibers are numbered in the order they were created within the run, which
 * the schedule itself determines, so a schedule replays exactly as long as
 * the program is the same.
 *
 * @internal
 */
import { InvalidScheduleError } from "./errors.ts"

/** One decision that differs from the default order. @internal */
export type Deviation =
  | { readonly _tag: "Pick"; readonly step: number; readonly fiber: number; readonly nth: number }
  | { readonly _tag: "Preempt"; readonly fiber: number; readonly turn: number; readonly ops: number }
  | { readonly _tag: "Interrupt"; readonly step: number; readonly fiber: number }

/** @internal */
export const pick = (step: number, fiber: number, nth: number): Deviation => ({ _tag: "Pick", step, fiber, nth })
/** @internal */
export const preempt = (fiber: number, turn: number, ops: number): Deviation => ({ _tag: "Preempt", fiber, turn, ops })
/** @internal */
export const interrupt = (step: number, fiber: number): Deviation => ({ _tag: "Interrupt", step, fiber })

/** A parsed schedule. @internal */
export interface Schedule {
  readonly seed: number
  readonly deviations: ReadonlyArray<Deviation>
  /** Steps the recorded run took, when known. */
  readonly steps: number | undefined
}

const token = (d: Deviation): string =>
  d._tag === "Pick"
    ? `${d.step}>${d.fiber}${d.nth === 0 ? "" : `.${d.nth}`}`
    : d._tag === "Preempt"
    ? `${d.fiber}.${d.turn}^${d.ops}`
    : `${d.step}!${d.fiber}`

/** @internal */
export const format = (schedule: Schedule): string =>
  [
    `s${schedule.seed}`,
    ...schedule.deviations.map(token),
    ...(schedule.steps === undefined ? [] : [`=${schedule.steps}`])
  ]
    .join(" ")

/** Number of preemptions and interruptions (what shrinking minimises first). @internal */
export const weight = (schedule: Schedule): number =>
  schedule.deviations.reduce((n, d) => n + (d._tag === "Pick" ? 1 : 3), 0)

/** @internal */
export const parse = (text: string): Schedule | InvalidScheduleError => {
  const tokens = text.trim().split(/\s+/).filter((t) => t.length > 0)
  let seed: number | undefined
  let steps: number | undefined
  const deviations: Array<Deviation> = []
  for (const t of tokens) {
    let m: RegExpExecArray | null
    if ((m = /^s(-?\d+)$/.exec(t)) !== null && seed === undefined) seed = Number(m[1])
    else if ((m = /^(\d+)>(\d+)(?:\.(\d+))?$/.exec(t)) !== null) {
      deviations.push(pick(Number(m[1]), Number(m[2]), m[3] === undefined ? 0 : Number(m[3])))
    } else if ((m = /^(\d+)\.(\d+)\^(\d+)$/.exec(t)) !== null) {
      deviations.push(preempt(Number(m[1]), Number(m[2]), Number(m[3])))
    } else if ((m = /^(\d+)!(\d+)$/.exec(t)) !== null) deviations.push(interrupt(Number(m[1]), Number(m[2])))
    else if ((m = /^=(\d+)$/.exec(t)) !== null && steps === undefined) steps = Number(m[1])
    else return new InvalidScheduleError({ schedule: text, token: t })
  }
  if (seed === undefined) return new InvalidScheduleError({ schedule: text, token: tokens[0] ?? "" })
  return { seed, deviations, steps }
}
