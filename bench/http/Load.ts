/**
 * How much CPU the rest of the machine used while a run was measured. Other processes on a
 * 2-core machine skew a benchmark, so the runner waits (briefly) for a quiet machine before
 * each run and reports the load it could not avoid.
 *
 * "Other" CPU = busy time of the whole machine (/proc/stat: user, nice, system, steal) minus
 * the CPU of the runner and every child it started (/proc/<pid>/stat). Linux only; elsewhere
 * it reads as unknown (NaN).
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

const hz = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

const busyTicks = (): number => {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal
  return fields[0]! + fields[1]! + fields[2]! + (fields[7] ?? 0)
}

/** CPU ticks (user + system) used so far by process `pid`, 0 if it is gone. */
export const processTicks = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return 0
  }
}

// CPU used by children that were stopped: they are gone when the run's end is measured.
let stoppedTicks = 0

/** Call just before stopping a child process, so its CPU still counts as ours. */
export const recordStopped = (pid: number | undefined): void => {
  stoppedTicks += processTicks(pid)
}

export interface Snapshot {
  readonly busy: number
  readonly ours: number
  readonly atMs: number
}

/** The machine's and our own CPU now; `live` are the pids of our children running now. */
export const snapshot = (live: ReadonlyArray<number | undefined>): Snapshot => {
  try {
    return {
      busy: busyTicks(),
      ours: processTicks(process.pid) + live.reduce<number>((sum, pid) => sum + processTicks(pid), 0) +
        stoppedTicks,
      atMs: performance.now()
    }
  } catch {
    return { busy: Number.NaN, ours: Number.NaN, atMs: performance.now() }
  }
}

/** Cores' worth of CPU used by other processes between two snapshots. */
export const otherCores = (from: Snapshot, to: Snapshot): number => {
  const seconds = (to.atMs - from.atMs) / 1000
  if (seconds <= 0) return Number.NaN
  return Math.max(0, (to.busy - from.busy - (to.ours - from.ours)) / hz / seconds)
}

/** Waits (at most `maxMs`) until other processes use less than `threshold` cores. */
export const waitForQuiet = async (
  live: ReadonlyArray<number | undefined>,
  threshold: number,
  maxMs: number
): Promise<number> => {
  const start = performance.now()
  let load = Number.NaN
  do {
    const from = snapshot(live)
    await new Promise((resolve) => setTimeout(resolve, 250))
    load = otherCores(from, snapshot(live))
    if (!(load >= threshold)) return load
  } while (performance.now() - start < maxMs)
  return load
}
