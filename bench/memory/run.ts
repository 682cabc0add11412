/**
 * Where a connection's memory goes, from V8 heap snapshots of a peer's server process.
 *
 * ```sh
 * node bench/memory/run.ts connections --peer=sluice --count=2000   # heap per open connection, by constructor
 * node bench/memory/run.ts churn --peer=sluice --cycles=20000       # what finished connections leave behind
 * ```
 *
 * `connections`: a snapshot with no client, another with `count` SSE connections open; the
 * difference per connection, by constructor (self sizes). `churn`: the churn scenario's
 * cycles (connect, read 1 to 3 events, destroy, 32 at a time, one event published per ms)
 * after a warm-up of `warmup` cycles; a snapshot after the warm-up and one after the cycles,
 * both once the peer counts no subscriber; the difference per cycle shows any retention
 * (0 bytes per cycle: nothing kept per finished connection). Snapshots go to
 * `bench/results/tmp/heap/`.
 */
import { mkdirSync } from "node:fs"
import { placement, startClients, startServer } from "../http/Processes.ts"
import { diff, groups, total } from "./Snapshot.ts"

const args = process.argv.slice(2)
const option = (name: string, fallback: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const mode = args[0]
if (mode !== "connections" && mode !== "churn") {
  console.error(
    "usage: run.ts connections|churn [--peer=sluice] [--count=2000] [--cycles=20000] [--warmup=2000] [--top=30]"
  )
  process.exit(2)
}
const peer = option("peer", "sluice")
const top = Number(option("top", "30"))
const dir = new URL("../results/tmp/heap/", import.meta.url).pathname
mkdirSync(dir, { recursive: true })

const where = placement()
const { child: server, port } = await startServer(peer, where)
const [client] = await startClients(1, where)
const snapshot = async (label: string) => {
  const r = await server.call({ type: "heapSnapshot", path: `${dir}${peer}-${mode}-${label}.heapsnapshot` }, 120_000)
  return { ...r, groups: groups(r.path) }
}
const show = (
  before: Awaited<ReturnType<typeof snapshot>>,
  after: Awaited<ReturnType<typeof snapshot>>,
  per: number,
  unit: string
) => {
  console.log(
    `${peer}: heapUsed ${(before.heapUsedBytes / 1048576).toFixed(2)} → ${
      (after.heapUsedBytes / 1048576).toFixed(2)
    } MiB, ` +
      `${((after.heapUsedBytes - before.heapUsedBytes) / per).toFixed(0)} B per ${unit}; snapshot self sizes ` +
      `${((total(after.groups) - total(before.groups)) / per).toFixed(0)} B per ${unit}`
  )
  for (const row of diff(before.groups, after.groups, per).slice(0, top)) {
    console.log(`${row.bytes.toFixed(1).padStart(9)} B ${row.count.toFixed(2).padStart(7)} × ${row.key}`)
  }
}
try {
  if (mode === "connections") {
    const count = Number(option("count", "2000"))
    const before = await snapshot("0")
    const opened = await client!.call({ type: "open", port, count, concurrency: 128, timeoutMs: 60_000 }, 65_000)
    if (opened.failed > 0) throw new Error(`${opened.failed} connections failed`)
    await server.call({ type: "waitSubscribers", atLeast: count, atMost: count, timeoutMs: 30_000 }, 35_000)
    const after = await snapshot(String(count))
    show(before, after, count, "connection")
  } else {
    const cycles = Number(option("cycles", "20000"))
    const warmup = Number(option("warmup", "2000"))
    await server.call({ type: "ticker", intervalMs: 1, payloadBytes: 100 }, 10_000)
    const churn = async (n: number) => {
      const r = await client!.call({
        type: "churn",
        port,
        cycles: n,
        concurrency: 32,
        timeCapMs: 600_000,
        timeoutMs: 620_000
      }, 630_000)
      await server.call({ type: "waitSubscribers", atLeast: 0, atMost: 0, timeoutMs: 10_000 }, 15_000)
      return r
    }
    await churn(warmup)
    const before = await snapshot("warm")
    const r = await churn(cycles)
    const after = await snapshot(String(cycles))
    console.log(
      `${r.completed} cycles completed, ${r.failed} failed, ${(r.completed / (r.elapsedUs / 1e6)).toFixed(0)}/s`
    )
    show(before, after, r.completed + r.failed, "cycle")
  }
} finally {
  await client!.stop()
  await server.stop()
}
