/**
 * Instructions per churn cycle, counted by valgrind (callgrind): a figure the other work on a
 * shared machine does not move, for comparing peers (and versions of one) where wall-clock
 * rates are noise.
 *
 * ```sh
 * node bench/memory/instructions.ts --peers=raw,platform,sluice --cycles=400,1200
 * ```
 *
 * Each peer's server runs under callgrind twice, once per cycle count (connect, read 1 to 3
 * events, destroy, 8 at a time, one event published every `--tick` ms, default 20); the difference of the two totals
 * over the difference of the counts is the instructions per cycle, start-up and shutdown
 * left out. Slow: minutes per peer. `platform` is the floor under sluice's routes (see
 * `peers/platform.ts`).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, readFileSync } from "node:fs"
import type { ServerMessage } from "../http/Ipc.ts"
import { placement, startClients } from "../http/Processes.ts"

const args = process.argv.slice(2)
const option = (name: string, fallback: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const peers = option("peers", "raw,platform,sluice").split(",")
// Far enough apart that the JIT's warm-up (mostly in the first cycles) drops out.
const [low, high] = option("cycles", "400,1200").split(",").map(Number) as [number, number]
// Under callgrind a cycle takes far longer than on its own: a slower ticker keeps the
// publishing share of a cycle near what it is in the churn scenario.
const tickMs = Number(option("tick", "20"))
const dir = new URL("../results/tmp/callgrind/", import.meta.url).pathname
mkdirSync(dir, { recursive: true })

const call = (child: ChildProcess, command: object, id: number) =>
  new Promise<unknown>((resolve, reject) => {
    const onMessage = (m: ServerMessage) => {
      if ((m.type === "reply" || m.type === "error") && m.id === id) {
        child.off("message", onMessage)
        if (m.type === "reply") resolve(m.result)
        else reject(new Error(m.message))
      }
    }
    child.on("message", onMessage)
    child.send({ ...command, id })
  })

const instructions = async (peer: string, cycles: number): Promise<number> => {
  const out = `${dir}${peer}-${cycles}.out`
  const server = spawn("valgrind", [
    "--tool=callgrind",
    `--callgrind-out-file=${out}`,
    process.execPath,
    "--disable-warning=ExperimentalWarning",
    new URL("../http/server.ts", import.meta.url).pathname,
    peer
  ], { stdio: ["ignore", "ignore", "ignore", "ipc"] })
  const port = await new Promise<number>((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`${peer} exited (${code})`)))
    server.on("message", (m: ServerMessage) => {
      if (m.type === "ready") resolve(m.port)
    })
  })
  const [client] = await startClients(1, { ...placement(), serverCores: undefined })
  await call(server, { type: "ticker", intervalMs: tickMs, payloadBytes: 100 }, 1)
  const done = await client!.call(
    { type: "churn", port, cycles, concurrency: 8, timeCapMs: 3_600_000, timeoutMs: 3_700_000 },
    3_800_000
  )
  if (done.completed + done.failed < cycles) throw new Error(`${peer}: ${done.completed} cycles`)
  await client!.stop()
  const exited = new Promise((resolve) => server.once("exit", resolve))
  server.disconnect()
  await exited
  const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(out, "utf8"))
  if (totals === null) throw new Error(`${peer}: no totals in ${out}`)
  return Number(totals[1])
}

const results: Record<string, number> = {}
for (const peer of peers) {
  const a = await instructions(peer, low)
  const b = await instructions(peer, high)
  results[peer] = (b - a) / (high - low)
  console.log(
    `${peer}: ${(results[peer] / 1000).toFixed(0)} k instructions per cycle (${a} at ${low}, ${b} at ${high})`
  )
}
if (results.raw !== undefined) {
  for (const peer of peers) console.log(`${peer}: ${(results[peer]! / results.raw).toFixed(2)}x raw`)
}
