/**
 * The overload attacks at full size, against the demo as shipped (one core):
 * run by `pnpm bench --full` after the HTTP benchmark, or alone with
 * `node bench/overload/run.ts [--attacks=tasks,streams,silent,publish]`.
 * The CI-sized versions of the same attacks are the tests in tests/overload.
 *
 * The demo runs on core 0 (`taskset`), the attackers and the /health probe
 * on the other core. For each attack: peak RSS of the server, /health
 * latency during the attack (a fresh connection every 100 ms), and the
 * answers by status and reason. Writes bench/results/overload.md.
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { type DemoProcess, startDemo } from "../../tests/demo/DemoProcess.ts"
import { floodStreams, health, type Latencies, memoryOf, pool, post, probeHealth } from "../../tests/overload/attack.ts"

const asked = process.argv.find((a) => a.startsWith("--attacks="))?.slice("--attacks=".length).split(",")
const wanted = (name: string) => asked === undefined || asked.includes(name)

const taskset = (() => {
  try {
    execFileSync("taskset", ["-p", "-c", "1", String(process.pid)], { stdio: "ignore" })
    return ["taskset", "-c", "0"]
  } catch {
    return []
  }
})()

interface Row {
  readonly attack: string
  readonly load: string
  readonly answers: string
  readonly peakRss: string
  readonly health: string
  readonly after: string
}
const rows: Array<Row> = []
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`
const fmt = (l: Latencies) =>
  `${l.count} probes, p50 ${l.p50.toFixed(0)} ms, p99 ${l.p99.toFixed(0)} ms, max ${l.max.toFixed(0)} ms` +
  (l.failed > 0 ? `, ${l.failed} unanswered` : "")
const tally = (statuses: ReadonlyArray<number>) => {
  const counts = new Map<number, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].toSorted(([a], [b]) => a - b).map(([s, n]) => `${n} × ${s}`).join(", ")
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const withDemo = async (env: Record<string, string>, f: (demo: DemoProcess) => Promise<void>) => {
  const demo = await startDemo({ prefix: taskset, env })
  try {
    await f(demo)
  } finally {
    await demo.stop("SIGKILL")
  }
}

const settle = async (demo: DemoProcess) => {
  await sleep(2_000)
  const answer = await health(demo.port, 30_000)
  return `/health ${answer.status} in ${answer.ms.toFixed(0)} ms`
}

// 1. Memory from small requests: 20 000 creations of a 1 000-step task nobody reads.
const tasks = async (label: string, env: Record<string, string>) =>
  withDemo(env, async (demo) => {
    const probe = probeHealth(demo.port)
    const body = JSON.stringify({ steps: 1_000, stepMs: 0 })
    const answers = await pool(
      Array.from({ length: 20_000 }),
      32,
      () => post(demo.port, "/api/tasks", body, { "content-type": "application/json" }).catch(() => ({ status: 0 }))
    )
    for (let i = 0; i < 300; i++) {
      const h = await health(demo.port, 30_000)
      if (h.body?.tasks?.running === 0) break
      await sleep(200)
    }
    const latency = await probe.stop()
    rows.push({
      attack: `tasks (${label})`,
      load: "20 000 × POST /api/tasks {steps: 1000, stepMs: 0}, 32 at a time",
      answers: tally(answers.map((a) => a.status)),
      peakRss: mib(memoryOf(demo.pid).peak),
      health: fmt(latency),
      after: await settle(demo)
    })
  })

// 2. Streams past the limit: 12 000 ticker streams from one address.
const streams = async () =>
  withDemo({ MAX_STREAMS_PER_CLIENT: "100000" }, async (demo) => {
    const probe = probeHealth(demo.port)
    const flood = await floodStreams(demo.port, "/api/ticker/stream", 12_000, 200, 30_000)
    await sleep(5_000)
    const latency = await probe.stop()
    const first = flood.open.slice(0, 100)
    const before = first.map((s) => flood.bytes.get(s) ?? 0)
    await sleep(2_000)
    const flowing = first.filter((s, k) => (flood.bytes.get(s) ?? 0) > before[k]!).length
    rows.push({
      attack: "streams",
      load: "12 000 × GET /api/ticker/stream, 200 at a time",
      answers: `${flood.open.length} × 200, ` +
        [...flood.reasons].map(([reason, n]) => `${n} × ${reason}`).join(", ") +
        (flood.failed > 0 ? `, ${flood.failed} failed` : "") +
        `; ${flowing} of the first 100 streams still receiving`,
      peakRss: mib(memoryOf(demo.pid).peak),
      health: fmt(latency),
      after: await settle(demo)
    })
    flood.close()
  })

// 3. Sockets that never send a request: 21 000, from three processes (fd limits).
const silent = async () =>
  withDemo({}, async (demo) => {
    const probe = probeHealth(demo.port)
    const script = fileURLToPath(new URL("./silent.ts", import.meta.url))
    const children = [0, 1, 2].map(() =>
      spawn(process.execPath, [script, String(demo.port), "7000"], { stdio: ["pipe", "pipe", "inherit"] })
    )
    const reports = children.map((child) => {
      const lines = createInterface({ input: child.stdout! })
      const queue: Array<(line: string) => void> = []
      lines.on("line", (line) => queue.shift()?.(line))
      return () => new Promise<any>((resolve) => queue.push((line) => resolve(JSON.parse(line))))
    })
    const connected = await Promise.all(reports.map((next) => next()))
    await sleep(3_000)
    const latency = await probe.stop()
    const guard = (await health(demo.port, 30_000)).body?.sockets
    for (const child of children) child.stdin!.write("\n")
    const later = await Promise.all(reports.map((next) => next()))
    for (const child of children) child.stdin!.end()
    const sum = (xs: ReadonlyArray<any>, k: string) => xs.reduce((a, x) => a + x[k], 0)
    rows.push({
      attack: "silent sockets",
      load: "21 000 sockets that send nothing, from 3 processes",
      answers: `${sum(connected, "connected")} connected, ${sum(later, "closedByServer")} closed by the server ` +
        `(${guard?.evictedSilent} to make room, ${guard?.silentTimeouts} silent too long, ${guard?.overLimit} over the cap); ` +
        `open at the end ${guard?.open} of ${guard?.maxSockets}`,
      peakRss: mib(memoryOf(demo.pid).peak),
      health: fmt(latency),
      after: await settle(demo)
    })
  })

// 5. The publish route: 20 000 text/plain and 20 000 unauthenticated JSON publishes.
const publish = async () =>
  withDemo({}, async (demo) => {
    const probe = probeHealth(demo.port)
    const linesBefore = demo.output().split("\n").length
    const body = JSON.stringify({ ticker: "ACME", price: 1 })
    const plain = await pool(
      Array.from({ length: 20_000 }),
      32,
      () => post(demo.port, "/api/ticker/publish", body, { "content-type": "text/plain" }).catch(() => ({ status: 0 }))
    )
    const anonymous = await pool(
      Array.from({ length: 20_000 }),
      32,
      () =>
        post(demo.port, "/api/ticker/publish", body, { "content-type": "application/json" }).catch(() => ({
          status: 0
        }))
    )
    const latency = await probe.stop()
    rows.push({
      attack: "publish",
      load: "20 000 text/plain + 20 000 JSON publishes without a token, 32 at a time",
      answers: `text/plain: ${
        tally(plain.map((a) => a.status))
      }; no token: ${tally(anonymous.map((a) => a.status))}; ` +
        `${demo.output().split("\n").length - linesBefore} log lines`,
      peakRss: mib(memoryOf(demo.pid).peak),
      health: fmt(latency),
      after: await settle(demo)
    })
  })

const started = Date.now()
if (wanted("tasks")) {
  await tasks("as shipped", {})
  await tasks("per-client caps off: the budget alone", { DEMO_TASK_RATE: "0", DEMO_MAX_TASKS: "0" })
}
if (wanted("streams")) await streams()
if (wanted("silent")) await silent()
if (wanted("publish")) await publish()

const markdown = [
  "# Overload attacks, full size",
  "",
  `Run: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}, Node ${process.versions.node}, ${cpus().length} × ${
    cpus()[0]?.model.trim() ?? "?"
  }, demo ${taskset.length > 0 ? "on core 0, attackers on core 1" : "unpinned"}, ${
    ((Date.now() - started) / 1000).toFixed(0)
  } s. /health is probed on a fresh connection every 100 ms during each attack.`,
  "",
  "| attack | load | answers | peak RSS | /health during | after 2 s |",
  "| --- | --- | --- | ---: | --- | --- |",
  ...rows.map((r) => `| ${r.attack} | ${r.load} | ${r.answers} | ${r.peakRss} | ${r.health} | ${r.after} |`)
].join("\n") + "\n"
const dir = new URL(asked === undefined ? "../results/" : "../results/tmp/", import.meta.url)
mkdirSync(dir, { recursive: true })
writeFileSync(new URL("overload.md", dir), markdown)
console.log("\n" + markdown)
