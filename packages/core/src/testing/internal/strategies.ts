/**
 * Scheduling strategies for the race runner: each is a `Chooser` factory for
 * one run.
 *
 * - random: a uniformly random ready task at every step, and a preemption
 *   with probability `p` at every operation where another task is ready;
 * - PCT (probabilistic concurrency testing, Burckhardt et al. 2010): every
 *   fiber gets a random priority, the highest-priority ready task runs, and at
 *   `depth - 1` random points the running fiber drops to a low priority. A
 *   bug that needs `d` ordering constraints is found in one run with
 *   probability at least `1 / (n·k^(d-1))` (n fibers, k points); one fiber
 *   can run far ahead of the others, which random schedules almost never do;
 * - exhaustive: a depth-first walk of every choice (which task runs, whether
 *   to preempt) with at most `bound` preemptions per run;
 * - replay: the decisions of a recorded schedule, strictly (any mismatch is a
 *   divergence) or leniently (mismatches fall back to the default, for
 *   shrinking).
 *
 * @internal
 */
import type { FiberRecord } from "./registry.ts"
import type { Chooser, Control, Task } from "./runner.ts"
import type * as Schedule from "./schedule.ts"

/** mulberry32: small, fast, and good enough to pick an order. @internal */
export const prng = (seed: number): () => number => {
  let state = seed | 0
  return () => {
    let t = (state = (state + 0x6d2b79f5) | 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The seed of run `run` of a check seeded with `seed`. @internal */
export const runSeed = (seed: number, run: number): number => {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(run + 1, 0xc2b2ae35)
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  h ^= h >>> 15
  return h & 0x7fffffff
}

const interruptWith =
  (rng: () => number, probability: number) => (candidates: ReadonlyArray<FiberRecord>): FiberRecord | undefined =>
    probability > 0 && rng() < probability ? candidates[Math.floor(rng() * candidates.length)] : undefined

/** @internal */
export const random = (seed: number, preemption: number, interrupt: number) => (_: Control): Chooser => {
  const rng = prng(seed)
  return {
    faults: interrupt > 0,
    pick: (ready) => ready.length === 1 ? 0 : Math.floor(rng() * ready.length),
    preempt: () => preemption > 0 && rng() < preemption,
    interrupt: interruptWith(rng, interrupt),
    onRecord: () => {},
    endStep: () => {},
    end: () => {}
  }
}

/** Shared across the runs of one check: the most choice points one run had so far. @internal */
export interface PctState {
  points: number
}

/**
 * Choice points a PCT run schedules by priority before it turns fair (random):
 * PCT assumes fibers block when they cannot progress, and a fiber spinning on
 * `yieldNow` with the highest priority would otherwise starve the others for
 * ever (Coyote bounds its unfair prefix the same way).
 *
 * @internal
 */
export const pctUnfairPoints = 2_000

/** @internal */
export const pct = (seed: number, depth: number, interrupt: number, state: PctState) => (_: Control): Chooser => {
  const rng = prng(seed)
  const k = state.points > 0 ? state.points : 50
  const changes: Array<number> = []
  while (changes.length < Math.min(depth - 1, k)) {
    const point = 1 + Math.floor(rng() * k)
    if (!changes.includes(point)) changes.push(point)
  }
  let points = 0
  const best = (ready: ReadonlyArray<Task>) => {
    let index = 0
    for (let i = 1; i < ready.length; i++) if (ready[i]!.owner.priority > ready[index]!.owner.priority) index = i
    return index
  }
  const fair = () => points >= pctUnfairPoints
  // One choice point passes; at the i-th change point the running fiber drops
  // below every initial priority.
  const tick = (running: FiberRecord) => {
    points++
    const change = changes.indexOf(points)
    if (change !== -1) running.priority = depth - 1 - change
  }
  return {
    faults: interrupt > 0,
    pick: (ready) => {
      if (ready.length === 1) return 0
      if (!fair()) return best(ready)
      return Math.floor(rng() * ready.length)
    },
    preempt: (running, _ops, ready) => {
      tick(running)
      return !fair() && ready.some((t) => t.owner.priority > running.priority)
    },
    interrupt: interruptWith(rng, interrupt),
    // Initial priorities are distinct and above every change-point priority.
    onRecord: (record) => {
      record.priority = depth + rng()
    },
    // The end of a turn is a point too (fibers that yield are not preempted).
    endStep: (_step, owner, ops) => {
      if (ops > 0) tick(owner)
    },
    end: () => {
      state.points = Math.max(state.points, Math.min(points, pctUnfairPoints))
    }
  }
}

/** A depth-first walk over the choices of a program. @internal */
export class Explorer {
  private readonly stack: Array<{ options: number; chosen: number; preempt: boolean }> = []
  private pos = 0
  private preemptions = 0
  private readonly bound: number

  constructor(bound: number) {
    this.bound = bound
  }

  /** The chooser for the next run (follows the current prefix, then takes the first option). */
  chooser = (control: Control): Chooser => {
    this.pos = 0
    this.preemptions = 0
    const choose = (options: number, preempt: boolean): number => {
      if (this.pos < this.stack.length) {
        const entry = this.stack[this.pos++]!
        if (entry.options !== options || entry.preempt !== preempt) {
          control.diverge(
            `the program is not deterministic: a choice that had ${entry.options} options now has ${options}`
          )
          return 0
        }
        return entry.chosen
      }
      this.stack.push({ options, chosen: 0, preempt })
      this.pos++
      return 0
    }
    return {
      faults: false,
      pick: (ready) => ready.length === 1 ? 0 : choose(ready.length, false),
      preempt: () => {
        if (this.preemptions >= this.bound) return false
        const yes = choose(2, true) === 1
        if (yes) this.preemptions++
        return yes
      },
      interrupt: () => undefined,
      onRecord: () => {},
      endStep: () => {},
      end: () => {}
    }
  }

  /** Moves to the next unexplored schedule; `false` when every one was explored. */
  next(): boolean {
    this.stack.length = this.pos
    while (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1]!
      if (top.chosen + 1 < top.options) {
        if (!top.preempt) {
          top.chosen++
          return true
        }
        const before = this.stack.reduce(
          (n, e, i) => n + (i < this.stack.length - 1 && e.preempt && e.chosen === 1 ? 1 : 0),
          0
        )
        if (before < this.bound) {
          top.chosen = 1
          return true
        }
      }
      this.stack.pop()
    }
    return false
  }
}

/**
 * Follows `schedule`. Strict: a decision that cannot be taken (the fiber is
 * not ready, the preemption point never comes, the run ends at another step)
 * is a divergence. Lenient: it is skipped.
 *
 * @internal
 */
export const replay = (schedule: Schedule.Schedule, strict: boolean) => (control: Control): Chooser => {
  const picks = new Map<number, Extract<Schedule.Deviation, { _tag: "Pick" }>>()
  const preempts = new Map<string, Extract<Schedule.Deviation, { _tag: "Preempt" }>>()
  const interrupts = new Map<number, Extract<Schedule.Deviation, { _tag: "Interrupt" }>>()
  for (const d of schedule.deviations) {
    if (d._tag === "Pick") picks.set(d.step, d)
    else if (d._tag === "Preempt") preempts.set(`${d.fiber}.${d.turn}`, d)
    else interrupts.set(d.step, d)
  }
  const name = (task: Task) => `#${task.owner.n}`
  return {
    faults: interrupts.size > 0,
    pick: (ready, step) => {
      const d = picks.get(step)
      if (d === undefined) return 0
      const mine = ready.filter((t) => t.owner.n === d.fiber)
      const task = mine[d.nth]
      if (task !== undefined) return ready.indexOf(task)
      if (strict) {
        control.diverge(
          `the schedule runs fiber #${d.fiber} here, but it is not ready (ready: ${ready.map(name).join(", ")})`
        )
      }
      return 0
    },
    preempt: (running, ops) => {
      const key = `${running.n}.${running.turns}`
      const d = preempts.get(key)
      if (d === undefined || d.ops !== ops) return false
      preempts.delete(key)
      return true
    },
    interrupt: (candidates, step) => {
      const d = interrupts.get(step)
      if (d === undefined) return undefined
      const victim = candidates.find((r) => r.n === d.fiber)
      if (victim === undefined && strict) {
        control.diverge(`the schedule interrupts fiber #${d.fiber} here, but it is not alive`)
      }
      return victim
    },
    onRecord: () => {},
    endStep: (_step, owner, ops) => {
      const d = ops === 0 ? undefined : preempts.get(`${owner.n}.${owner.turns}`)
      if (d !== undefined && strict) {
        control.diverge(
          `the schedule preempts fiber #${d.fiber} before operation ${d.ops} of its turn ${d.turn}, but that turn ended after ${ops}`
        )
      }
    },
    end: (steps) => {
      if (strict && preempts.size > 0) {
        const d = preempts.values().next().value!
        control.diverge(`the schedule preempts fiber #${d.fiber} in its turn ${d.turn}, which never came`)
      } else if (strict && schedule.steps !== undefined && steps !== schedule.steps) {
        control.diverge(`the run took ${steps} steps, the schedule ${schedule.steps}`)
      }
    }
  }
}
