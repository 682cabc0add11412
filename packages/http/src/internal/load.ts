/**
 * The load measurements behind admission by load: event-loop delay over a
 * sample window, V8 heap use, memory left to the process. Sampled on a timer
 * (unref'd: it never keeps the process alive), so that admitting a stream
 * reads a few numbers and measures nothing.
 *
 * @internal
 */
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks"
import { getHeapStatistics } from "node:v8"
import type * as SseServer from "../SseServer.ts"

/** Thresholds, resolved: `undefined` is off. @internal */
export type Thresholds = SseServer.LoadSettings

/** @internal */
export interface Monitor {
  readonly current: () => SseServer.Load
  /** The threshold that the last sample is over, with its limit and value. */
  readonly over: () =>
    | { readonly reason: SseServer.LoadReason; readonly limit: number; readonly measured: number }
    | undefined
  readonly close: () => void
}

const idle: SseServer.Load = {
  eventLoopDelayMillis: 0,
  eventLoopDelayP99Millis: 0,
  heapUsed: 0,
  availableMemory: Number.POSITIVE_INFINITY,
  overloaded: undefined
}

// Node 22 has `process.availableMemory`; older runtimes count as unlimited.
const availableMemory = (): number => {
  const f = (process as { availableMemory?: () => number }).availableMemory
  return typeof f === "function" ? f.call(process) : Number.POSITIVE_INFINITY
}

/** A monitor that measures nothing (load admission off). @internal */
export const off: Monitor = { current: () => idle, over: () => undefined, close: () => {} }

/** Starts sampling. @internal */
export const start = (thresholds: Thresholds): Monitor => {
  // 10 ms: fine enough for thresholds of tens of milliseconds, and the
  // monitor's own timer costs nothing measurable at that rate.
  let histogram: IntervalHistogram | undefined
  if (thresholds.maxEventLoopDelayMillis !== undefined) {
    histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
  }
  let last = idle
  let verdict: ReturnType<Monitor["over"]> = undefined
  // The delay must be over its threshold in two windows in a row: one late
  // window (a GC pause, a neighbour taking the CPU) refuses nobody.
  let lateBefore = false

  let sampledAt = performance.now()
  const sample = () => {
    const now = performance.now()
    let mean = 0
    let p99 = 0
    if (histogram !== undefined) {
      if (histogram.count > 0) {
        // The histogram counts the timer's whole wait: take off its own period.
        mean = Math.max(0, histogram.mean / 1e6 - 10)
        p99 = Math.max(0, histogram.percentile(99) / 1e6 - 10)
        histogram.reset()
      } else {
        // Not one tick of the monitor's timer in the whole window: the loop
        // was blocked all along, and this sample itself is that late.
        mean = p99 = Math.max(0, now - sampledAt - thresholds.sampleIntervalMillis)
      }
    }
    sampledAt = now
    const heap = getHeapStatistics()
    const heapUsed = heap.used_heap_size / heap.heap_size_limit
    const available = thresholds.minAvailableMemory === undefined ? Number.POSITIVE_INFINITY : availableMemory()
    const late = thresholds.maxEventLoopDelayMillis !== undefined && mean > thresholds.maxEventLoopDelayMillis
    verdict = late && lateBefore
      ? { reason: "event_loop_delay", limit: thresholds.maxEventLoopDelayMillis!, measured: mean }
      : thresholds.maxHeapUsed !== undefined && heapUsed > thresholds.maxHeapUsed
      ? { reason: "heap", limit: thresholds.maxHeapUsed, measured: heapUsed }
      : thresholds.minAvailableMemory !== undefined && available < thresholds.minAvailableMemory
      ? { reason: "memory", limit: thresholds.minAvailableMemory, measured: available }
      : undefined
    lateBefore = late
    last = {
      eventLoopDelayMillis: mean,
      eventLoopDelayP99Millis: p99,
      heapUsed,
      availableMemory: available,
      overloaded: verdict?.reason
    }
  }
  sample()
  const timer = setInterval(sample, thresholds.sampleIntervalMillis)
  timer.unref()
  return {
    current: () => last,
    over: () => verdict,
    close: () => {
      clearInterval(timer)
      histogram?.disable()
    }
  }
}
