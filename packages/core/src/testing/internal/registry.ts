/**
 * The kit's view of fibers: which exist, who forked them, their labels and
 * what each last suspended in.
 *
 * Effect 4 has no fiber registry, so the kit builds one from two public hooks:
 *
 * - a `Tracer` whose `context` hook sees every primitive a fiber evaluates
 *   (the kit only looks at `Async` primitives: their `register` function says
 *   what the fiber suspends in, see `waits.ts`), and which sees a fiber the
 *   first time it runs;
 * - `Metric.FiberRuntimeMetrics`, called when a fiber is created (before it
 *   runs) and when it ends.
 *
 * Both are forwarded to whatever was installed before, so tracing and
 * metrics of the code under test keep working.
 *
 * @internal
 */
import * as Context from "effect/Context"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Metric from "effect/Metric"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import { FiberLabel } from "../../internal/fiberLabel.ts"
import { format as formatSite, LabelSite, lastLabel } from "./site.ts"
import * as Waits from "./waits.ts"

/**
 * Marks fibers the kit owns (forked inside kit code): they are never leaks.
 *
 * @internal
 */
export const KitFiber = Context.Reference<boolean>("@sluice/core/testing/KitFiber", { defaultValue: () => false })

/**
 * A wait declared by the code itself (`Bubble.external`): fibers suspended
 * while it is in their context wait on something outside the bubble.
 *
 * @internal
 */
export const ExternalWait = Context.Reference<string | undefined>("@sluice/core/testing/ExternalWait", {
  defaultValue: () => undefined
})

/** One fiber as the kit knows it. @internal */
export interface FiberRecord {
  /** Number in order of creation within the registry: `#0`, `#1`, … */
  readonly n: number
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  readonly parent: FiberRecord | undefined
  startContext: Context.Context<never> | undefined
  kit: boolean
  /** The `register` of the last `Effect.callback` it evaluated. */
  lastAsync: Function | undefined
  ended: boolean
  /** Set while it sleeps on a wrapped `TestClock` (leak trackers): until when. */
  sleepUntil: number | undefined
  /** Scheduling data owned by the bubble's runner: ready tasks, turns taken, PCT priority. */
  ready: number
  turns: number
  /** Operations run in the current turn while nested in another fiber's task (0: not nested). */
  inlineOps: number
  priority: number
}

/** A live fiber, for reports. @internal */
export interface Info {
  readonly id: number
  readonly fiberId: number | undefined
  readonly label: string | undefined
  readonly waitingOn: Waits.Wait
  readonly forkSite: string | undefined
  readonly parent: number | undefined
}

const identifier = "~effect/Effect/identifier"
const evaluate = "~effect/Effect/evaluate"

/** @internal */
export class Registry {
  /** Records made so far (they are numbered in this order). */
  count = 0
  private readonly unbound = new Set<FiberRecord>()
  private readonly byFiber = new Map<Fiber.Fiber<unknown, unknown>, FiberRecord>()
  private lastFiber: unknown = undefined
  private lastRecord: FiberRecord | undefined = undefined
  /** Called for each record made (for the runner's bookkeeping). */
  onRecord: ((record: FiberRecord) => void) | undefined = undefined
  /** Called with each record when its fiber ends. */
  onEnd: ((record: FiberRecord) => void) | undefined = undefined
  /** Which fibers the tracer hook records (a bubble: only its own, not those of a bubble nested in it). */
  accepts: (fiber: Fiber.Fiber<unknown, unknown>) => boolean = () => true

  /** Makes a record without a fiber yet (created, not started). */
  create(parent: FiberRecord | undefined, context: Context.Context<never> | undefined): FiberRecord {
    const record: FiberRecord = {
      n: this.count++,
      fiber: undefined,
      parent,
      startContext: context,
      kit: context === undefined ? false : Context.get(context, KitFiber),
      lastAsync: undefined,
      ended: false,
      sleepUntil: undefined,
      ready: 0,
      turns: 0,
      inlineOps: 0,
      priority: 0
    }
    this.unbound.add(record)
    this.onRecord?.(record)
    return record
  }

  /** Attaches `fiber` to `record` and watches for its end. */
  bind(record: FiberRecord, fiber: Fiber.Fiber<unknown, unknown>): FiberRecord {
    record.fiber = fiber
    this.unbound.delete(record)
    record.startContext ??= fiber.context
    if (!record.kit) record.kit = fiber.getRef(KitFiber)
    this.byFiber.set(fiber, record)
    fiber.addObserver(() => {
      record.ended = true
      this.byFiber.delete(fiber)
      if (this.lastFiber === fiber) {
        this.lastFiber = undefined
        this.lastRecord = undefined
      }
      this.onEnd?.(record)
    })
    return record
  }

  /**
   * The oldest record made for a fiber with this initial context that has not
   * started yet (a fiber created, then run before its start task).
   */
  unstarted(context: Context.Context<never>): FiberRecord | undefined {
    for (const r of this.unbound) if (!r.ended && r.startContext === context) return r
    return undefined
  }

  get(fiber: Fiber.Fiber<unknown, unknown>): FiberRecord | undefined {
    return this.byFiber.get(fiber)
  }

  /** The record of `fiber`, made on first sight (its parent is the fiber running now, if known). */
  recordOf(fiber: Fiber.Fiber<unknown, unknown>): FiberRecord {
    if (this.lastFiber === fiber && this.lastRecord !== undefined) return this.lastRecord
    let record = this.byFiber.get(fiber)
    if (record === undefined) {
      const current = Fiber.getCurrent()
      const parent = current !== undefined && current !== fiber ? this.byFiber.get(current) : undefined
      record = this.bind(this.create(parent, fiber.context), fiber)
    }
    this.lastFiber = fiber
    this.lastRecord = record
    return record
  }

  /** Records of fibers that have not ended (including created, not yet started), oldest first. */
  live(): Array<FiberRecord> {
    const live: Array<FiberRecord> = []
    for (const r of this.unbound) if (!r.ended) live.push(r)
    for (const r of this.byFiber.values()) if (!r.ended && r.fiber!.pollUnsafe() === undefined) live.push(r)
    return live.toSorted((a, b) => a.n - b.n)
  }

  /** A tracer that notes each fiber's suspensions and forwards everything to `outer`. */
  tracer(outer: Tracer.Tracer): Tracer.Tracer {
    const outerContext = outer.context
    return Tracer.make({
      span: (options) => outer.span(options),
      context: (primitive, fiber) => {
        const p = primitive as unknown as Record<string, unknown>
        const f = fiber as Fiber.Fiber<unknown, unknown>
        if (this.lastFiber !== fiber && !this.accepts(f)) {
          // not ours
        } else if (p[identifier] === "Async") {
          this.recordOf(f).lastAsync = p["register"] as Function
        } else if (this.lastFiber !== fiber) {
          this.recordOf(f)
        }
        return outerContext !== undefined
          ? outerContext(primitive, fiber)
          : (primitive as unknown as Record<string, (f: unknown) => never>)[evaluate]!(fiber)
      }
    })
  }

  /** What `record`'s fiber last suspended in (the caller knows better when it is running or ready). */
  waitOf(record: FiberRecord): Waits.Wait {
    if (record.fiber === undefined) return Waits.notStarted
    const external = record.fiber.getRef(ExternalWait)
    if (external !== undefined) return Waits.external(external)
    if (record.sleepUntil !== undefined) return Waits.sleep(record.sleepUntil)
    return record.lastAsync === undefined ? Waits.unknown : Waits.classify(record.lastAsync)
  }

  /** The label of a record's fiber: set inside it, or inherited when it was forked. */
  label(record: FiberRecord): string | undefined {
    const now = record.fiber !== undefined && record.fiber.pollUnsafe() === undefined
      ? record.fiber.getRef(FiberLabel)
      : "unlabeled"
    if (now !== "unlabeled") return now
    const last = record.fiber === undefined ? undefined : lastLabel.get(record.fiber)
    if (last !== undefined) return last
    const atStart = record.startContext === undefined ? "unlabeled" : Context.get(record.startContext, FiberLabel)
    return atStart === "unlabeled" ? undefined : atStart
  }

  /** `producer (#3)`, or `#3` without a label. */
  name(record: FiberRecord): string {
    const label = this.label(record)
    return label === undefined ? `#${record.n}` : `#${record.n} ${label}`
  }

  /** Where the fiber was forked, as far as the kit can tell. */
  forkSite(record: FiberRecord): string | undefined {
    const alive = record.fiber !== undefined && record.fiber.pollUnsafe() === undefined
    const site = alive ? record.fiber!.getRef(LabelSite) : undefined
    if (site !== undefined) return formatSite(site)
    const context = record.startContext
    if (context !== undefined) {
      const fromLabel = Context.get(context, LabelSite)
      if (fromLabel !== undefined) return formatSite(fromLabel)
      const frame = Context.get(context, References.CurrentStackFrame)
      if (frame !== undefined) {
        const line = frame.stack()?.split("\n").find((l) => /\w+\.\w+:\d+/.test(l))?.trim().replace(/^at /, "")
        return line === undefined ? `inside ${frame.name}` : `inside ${frame.name} (${line})`
      }
    }
    return record.parent === undefined ? undefined : `forked by ${this.name(record.parent)}`
  }

  info(record: FiberRecord, waitingOn: Waits.Wait = this.waitOf(record)): Info {
    return {
      id: record.n,
      fiberId: record.fiber?.id,
      label: this.label(record),
      waitingOn,
      forkSite: this.forkSite(record),
      parent: record.parent?.n
    }
  }
}

/**
 * A metrics service that calls `onStart`/`onEnd` and forwards to `outer`.
 *
 * @internal
 */
export const forwardingMetrics = (
  outer: Metric.FiberRuntimeMetricsService | undefined,
  onStart: (context: Context.Context<never>) => void,
  onEnd: (context: Context.Context<never>, exit: Exit.Exit<unknown, unknown>) => void
): Metric.FiberRuntimeMetricsService => ({
  recordFiberStart: (context) => {
    onStart(context)
    outer?.recordFiberStart(context)
  },
  recordFiberEnd: (context, exit) => {
    onEnd(context, exit)
    outer?.recordFiberEnd(context, exit)
  }
})
