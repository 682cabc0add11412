/**
 * Calibration of the load admission defaults: at how many ticker streams does
 * the demo's `/health` exceed 100 ms on one core, and what event-loop delay
 * does the server measure on the way there?
 *
 * `node bench/overload/calibrate.ts [--max=14000] [--step=1000]`
 *
 * The demo runs on core 0 (`taskset`) with load admission off and limits
 * out of the way; this process (the clients) runs on the other core. Each
 * step opens more ticker streams, lets them settle, then probes `/health`
 * (fresh connections, one at a time) and reads the server's own load
 * measurement. Stops past `--max` streams or once `/health` takes a second.
 */
import { execFileSync } from "node:child_process"
import { startDemo } from "../../tests/demo/DemoProcess.ts"
import { floodStreams, health, summarize } from "../../tests/overload/attack.ts"

const option = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback)
const max = option("max", 14_000)
const step = option("step", 1_000)

const taskset = (() => {
  try {
    execFileSync("taskset", ["-p", "-c", "1", String(process.pid)], { stdio: "ignore" })
    return ["taskset", "-c", "0"]
  } catch {
    return []
  }
})()

const demo = await startDemo({
  prefix: taskset,
  env: {
    MAX_EVENT_LOOP_DELAY_MS: "1000000",
    MAX_STREAMS: "100000",
    MAX_STREAMS_PER_CLIENT: "100000",
    MAX_SOCKETS: "19000",
    HEARTBEAT_MS: "15000"
  }
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rows: Array<string> = []
const floods: Array<{ close: () => void }> = []
try {
  console.log("| streams | /health p50 | /health p99 | /health max | ELD mean | ELD p99 | heap |")
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for (let streams = step; streams <= max; streams += step) {
    const flood = await floodStreams(demo.port, "/api/ticker/stream", step, 100, 30_000)
    floods.push(flood)
    await sleep(3_000)
    const samples: Array<{ status: number; ms: number; body: any }> = []
    for (let i = 0; i < 15; i++) {
      samples.push(await health(demo.port, 15_000))
      await sleep(150)
    }
    const s = summarize(samples)
    const loads = samples.map((x) => x.body?.load).filter((l) => l !== undefined)
    const mean = (f: (l: any) => number) => loads.reduce((a, l) => a + f(l), 0) / Math.max(1, loads.length)
    const row = `| ${samples.at(-1)?.body?.streams ?? "?"} | ${s.p50.toFixed(1)} ms | ${s.p99.toFixed(1)} ms | ${
      s.max.toFixed(1)
    } ms | ${mean((l) => l.eventLoopDelayMillis).toFixed(1)} ms | ${
      mean((l) => l.eventLoopDelayP99Millis).toFixed(1)
    } ms | ${(mean((l) => l.heapUsed) * 100).toFixed(0)}% |`
    rows.push(row)
    console.log(row)
    if (s.p50 > 1_000 || s.failed > 5 || flood.open.length < step / 2) break
  }
} finally {
  for (const f of floods) f.close()
  await demo.stop("SIGKILL")
}
