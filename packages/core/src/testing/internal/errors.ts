/**
 * The kit's errors and the model of a live fiber in them. Defined here because
 * the runner makes them; the public modules re-export them.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Waits from "./waits.ts"

/**
 * A fiber that was alive when the kit looked: who it is and what it waits on.
 *
 * @internal
 */
export interface LiveFiber {
  /** Its number in the bubble or tracker, in order of creation (`#3`). */
  readonly id: number
  /** Effect's own fiber id, when the fiber has started. */
  readonly fiberId: number | undefined
  /** Its label (`FiberLabel.set`, or a label sluice gives its own fibers). */
  readonly label: string | undefined
  /** What it is blocked in (or `Ready`/`Running`). */
  readonly waitingOn: Waits.Wait
  /** Where it was forked, when known (the `FiberLabel.set` call site, an `Effect.fn` span, or its parent). */
  readonly forkSite: string | undefined
  /** The number of the fiber that forked it. */
  readonly parent: number | undefined
}

/** `#3 producer: waiting on Queue.offer (queue full)`. @internal */
export const formatFiber = (fiber: LiveFiber, forkSites: boolean): string => {
  const name = fiber.label === undefined ? `#${fiber.id}` : `#${fiber.id} ${fiber.label}`
  const what = fiber.waitingOn._tag === "Ready" || fiber.waitingOn._tag === "Running" ||
      fiber.waitingOn._tag === "NotStarted"
    ? Waits.describe(fiber.waitingOn)
    : `waiting on ${Waits.describe(fiber.waitingOn)}`
  const site = forkSites && fiber.forkSite !== undefined ? `\n      forked at ${fiber.forkSite}` : ""
  return `  ${name}: ${what}${site}`
}

const list = (fibers: ReadonlyArray<LiveFiber>, forkSites: boolean) =>
  fibers.map((f) => formatFiber(f, forkSites)).join("\n")

/**
 * Fibers were still alive when they should all have ended: when a bubble's
 * root finished, or when a `LeakTracker` asserted that nothing was left.
 *
 * @internal
 */
export class LeakError extends Data.TaggedError("LeakError")<{
  /** How many fibers are alive. */
  readonly live: number
  /** Live fibers per label (`unlabeled` for fibers without one). */
  readonly byLabel: Readonly<Record<string, number>>
  /** Each live fiber the kit saw, with what it waits on. */
  readonly fibers: ReadonlyArray<LiveFiber>
  /** Whether the message shows fork sites. */
  readonly forkSites: boolean
}> {
  override get message(): string {
    const summary = Object.entries(this.byLabel).map(([label, n]) => `${label} x${n}`).join(", ")
    const details = this.fibers.length === 0 ? "" : `\n${list(this.fibers, this.forkSites)}`
    return `${this.live} fiber(s) still alive: ${summary}${details}`
  }
}

/**
 * No fiber of the bubble could run, no timer was pending and nothing outside
 * the bubble was awaited, while its root had not finished.
 *
 * @internal
 */
export class DeadlockError extends Data.TaggedError("DeadlockError")<{
  /** Every live fiber and what it waits on. */
  readonly fibers: ReadonlyArray<LiveFiber>
  /** The bubble's clock when it happened (milliseconds). */
  readonly time: number
  readonly forkSites: boolean
}> {
  override get message(): string {
    return `deadlock: no fiber can run and no timer is pending (at ${this.time} ms); ${this.fibers.length} fiber(s) blocked:\n${
      list(this.fibers, this.forkSites)
    }`
  }
}

/**
 * The bubble ran more scheduling steps than allowed: a livelock, a busy loop
 * or a loop on the clock that never ends.
 *
 * @internal
 */
export class StepLimitError extends Data.TaggedError("StepLimitError")<{
  readonly steps: number
  readonly time: number
  readonly fibers: ReadonlyArray<LiveFiber>
  readonly forkSites: boolean
}> {
  override get message(): string {
    return `no end after ${this.steps} scheduling steps (at ${this.time} ms): a livelock or an endless loop? (raise maxSteps if the program is just long)\n${
      list(this.fibers, this.forkSites)
    }`
  }
}

/**
 * A replayed schedule no longer matches the program.
 *
 * @internal
 */
export class DivergedError extends Data.TaggedError("DivergedError")<{
  /** The scheduling step (1-based) where the program and the schedule parted. */
  readonly step: number
  /** What the schedule expected and what the program did. */
  readonly reason: string
  readonly schedule: string
}> {
  override get message(): string {
    return `diverged at step ${this.step}: ${this.reason} (schedule ${this.schedule})`
  }
}

/**
 * A schedule string that cannot be read.
 *
 * @internal
 */
export class InvalidScheduleError extends Data.TaggedError("InvalidScheduleError")<{
  readonly schedule: string
  readonly token: string
}> {
  override get message(): string {
    return `invalid schedule ${JSON.stringify(this.schedule)}: cannot read ${
      JSON.stringify(this.token)
    } (expected s<seed>, <step>><fiber>[.<n>], <fiber>.<turn>^<op>, <step>!<fiber> or =<steps>)`
  }
}
