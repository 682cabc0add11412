/**
 * Gateway benchmark: publish throughput over HTTP, fan-out to subscribers
 * against sluice's in-process `Hub`, and publish-to-receive latency, in one
 * run.
 *
 *   node_modules/.bin/node --conditions=@sluice/source bench/gateway/run.ts [--quick] [--seconds=3] [--clients=1000]
 *     [--only=publish,fanout,latency] [--profile=<dir>]
 *
 * `--profile=<dir>` runs both servers with `--cpu-prof` (profiles written to
 * `<dir>` when they stop). Each load also reports the gateway's CPU use
 * (its process's user + system time over the wall time, from `/proc`): near
 * 100 % means the gateway's core is what bounds the figure, well under it
 * that the publishers or the subscribers do.
 *
 * The gateway (`sluice-gateway`, default options but the limits) and the
 * baseline (`hubServer.ts`) run as child processes, pinned to core 0 when
 * `taskset` exists; this runner (the publishers) and the subscribers
 * (`subscribers.ts`, a process of its own) to core 1.
 *
 * Scenarios:
 * - publish: `POST /internal/send` (to a key with a live client) and
 *   `POST /publish`, one event per request and batched (50 per request),
 *   with 0 and with `clients` subscribers on the topic; 16 keep-alive
 *   connections in closed loop for `seconds`; requests/s and events/s.
 * - fan-out: `clients` subscribers; the publisher sends a batch of 100
 *   events (gateway: one `POST /publish`; hub: one `POST /burst`, published
 *   in-process) and waits until every subscriber has it; deliveries/s.
 * - latency: `clients` subscribers; 100 single-event publishes per second;
 *   the time from sending the publish to each subscriber's receipt; p50/p99.
 *
 * Results are printed as a table and written to bench/results/gateway.json.
 * Figures move with the machine; compare the ratios of one run.
 */
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import { load as leanLoad } from "./load.ts"

const args = process.argv.slice(2)
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = args.includes("--quick")
const seconds = Number(option("seconds") ?? (quick ? 1.5 : 3))
const clients = Number(option("clients") ?? 1000)
/** `--only=publish,fanout,latency`: a subset of the scenarios. */
const only = option("only")?.split(",")
const runs = (scenario: string) => only === undefined || only.includes(scenario)
const profileDir = option("profile")
const root = fileURLToPath(new URL("../../", import.meta.url))
const secret = "bench-secret"
const hasTaskset = spawnSync("taskset", ["-V"]).status === 0
if (hasTaskset) spawnSync("taskset", ["-cp", "1", String(process.pid)])

const agent = new Http.Agent({ keepAlive: true, maxSockets: 64 })

// --- processes -------------------------------------------------------------

interface Child {
  readonly port: number
  readonly pid: number
  readonly stop: () => Promise<void>
}

const startChild = (script: string, extra: ReadonlyArray<string>, portPattern: RegExp): Promise<Child> =>
  new Promise((resolve, reject) => {
    const node = `${root}node_modules/node/bin/node`
    const profile = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]
    const command = [
      node,
      "--conditions=@sluice/source",
      "--disable-warning=ExperimentalWarning",
      ...profile,
      script,
      ...extra
    ]
    const child = hasTaskset
      ? spawn("taskset", ["-c", "0", ...command], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
      : spawn(command[0]!, command.slice(1), { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = portPattern.exec(out)
      if (m !== null) {
        resolve({
          port: Number(m[1]),
          pid: child.pid!,
          stop: () =>
            new Promise((done) => {
              child.once("exit", () => done())
              child.kill("SIGTERM")
            })
        })
      }
    })
    child.once("exit", (code) => reject(new Error(`${script} exited (${code}): ${out}`)))
  })

// CPU time (user + system, milliseconds) of a process so far; NaN without /proc.
const cpuMillis = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return Number.NaN
  }
}

/** Runs `f` and returns its result with the share of one core `pid` used meanwhile (0..1). */
const withCpu = async <A>(pid: number, f: () => Promise<A>): Promise<[A, number]> => {
  const cpu0 = cpuMillis(pid)
  const t0 = performance.now()
  const a = await f()
  return [a, (cpuMillis(pid) - cpu0) / (performance.now() - t0)]
}

// --- HTTP load -------------------------------------------------------------

const post = (port: number, path: string, body: string, headers: Record<string, string> = {}): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = Http.request({
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${secret}`,
        "content-length": Buffer.byteLength(body),
        ...headers
      }
    }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end(body)
  })

/** Closed-loop load (see load.ts): `connections` keep-alive loops of `POST path` for `seconds`; requests/s. */
const load = async (port: number, connections: number, path: string, body: string) => {
  const { failed, ok } = await leanLoad({
    port,
    path,
    body,
    connections,
    seconds,
    headers: { "content-type": "application/json", authorization: `Bearer ${secret}` }
  })
  if (failed > 0) console.error(`  (${failed} requests failed)`)
  return ok / seconds
}

// --- subscribers (in their own process: see subscribers.ts) ---------------

interface Subscribers {
  readonly received: () => Promise<number>
  readonly latencies: () => Promise<Array<number>>
  readonly waitFor: (total: number) => Promise<void>
  readonly close: () => Promise<void>
}

const farm = (() => {
  const node = `${root}node_modules/node/bin/node`
  const child = spawn(node, ["--disable-warning=ExperimentalWarning", `${root}bench/gateway/subscribers.ts`], {
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  if (hasTaskset) spawnSync("taskset", ["-cp", "1", String(child.pid)])
  // Replies come in the order of the requests.
  const pending: Array<(m: any) => void> = []
  child.on("message", (m) => pending.shift()?.(m))
  const ask = (message: unknown) =>
    new Promise<any>((resolve) => {
      pending.push(resolve)
      child.send(message as object)
    })
  return { ask, pid: child.pid!, stop: () => child.kill() }
})()

const subscribe = async (port: number, path: string, n: number, measure: boolean): Promise<Subscribers> => {
  const { accepted } = await farm.ask({ open: { port, path, n, measure } })
  if (accepted !== n) throw new Error(`${n - accepted} of ${n} subscribers were refused`)
  return {
    received: async () => (await farm.ask({ stats: true })).received,
    latencies: async () => (await farm.ask({ stats: true })).latencies,
    waitFor: async (total) => {
      const answer = await farm.ask({ waitFor: total })
      if (answer.timedOut) {
        const { subscribers } = await farm.ask({ stats: true })
        console.error(
          `  (only ${answer.reached} of ${total} deliveries arrived within 30 s; per subscriber ${
            JSON.stringify(subscribers)
          })`
        )
      }
    },
    close: async () => {
      await farm.ask({ close: true })
    }
  }
}

const quantile = (xs: Array<number>, q: number) => {
  if (xs.length === 0) return Number.NaN
  const sorted = xs.toSorted((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

// --- scenarios -------------------------------------------------------------

const sendBody = (n: number) => {
  const item = { key: "bench-key", event: { event: "bench", data: "t=0" } }
  return JSON.stringify(n === 1 ? item : Array.from({ length: n }, () => item))
}
const publishBody = (n: number, t = 0) => {
  const item = { topic: "bench", data: `t=${t}`, type: "bench" }
  return JSON.stringify(n === 1 ? item : Array.from({ length: n }, () => item))
}

const main = async () => {
  const gateway = await startChild("packages/gateway/src/main.ts", [
    "--port=0",
    `--secret=${secret}`,
    "--max-connections=100000",
    "--max-connections-per-client=100000",
    "--capacity=1024",
    "--heartbeat=off",
    "--max-event-loop-delay=off"
  ], /"port":(\d+)/)
  const hub = await startChild("bench/gateway/hubServer.ts", [], /port (\d+)/)
  const results: Record<string, number> = {}
  const row = (name: string, value: number, unit: string) => {
    results[name] = value
    console.log(`${name.padEnd(48)} ${value.toFixed(value < 100 ? 2 : 0).padStart(12)} ${unit}`)
  }
  try {
    console.log(`gateway benchmark: ${seconds} s per load, ${clients} subscribers, taskset: ${hasTaskset}`)
    // publish throughput
    if (runs("publish")) await publishScenario(row, gateway)
    if (runs("fanout")) await fanoutScenario(row, gateway, hub)
    if (runs("latency")) await latencyScenario(row, gateway, hub)
  } finally {
    await gateway.stop()
    await hub.stop()
    farm.stop()
    agent.destroy()
  }
  mkdirSync(`${root}bench/results`, { recursive: true })
  writeFileSync(
    `${root}bench/results/gateway.json`,
    JSON.stringify({ at: new Date().toISOString(), node: process.version, seconds, clients, results }, null, 2) + "\n"
  )
}

const pct = (share: number) => `${(share * 100).toFixed(0)} %`
// The gateway's CPU time per request: what the machine's other work does not move much.
const perRequest = (share: number, rps: number) => `${((share * 1e6) / rps).toFixed(0)} µs/req`

type Row = (name: string, value: number, unit: string) => void

// Slow consumers the server disconnected (a counter of its /metrics).
const slowConsumers = async (port: number, metric: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text().catch(() => "")
  let total = 0
  for (const m of text.matchAll(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\d+)`, "gm"))) total += Number(m[1])
  return total
}

const publishScenario = async (row: Row, gateway: Child) => {
  const keyClient = await subscribe(gateway.port, "/sse/bench-key", 1, false)
  for (const batch of [1, 50]) {
    const [rps, cpu] = await withCpu(
      gateway.pid,
      () => load(gateway.port, 16, "/internal/send", sendBody(batch))
    )
    row(
      `/internal/send batch=${batch} (1 client) req/s`,
      rps,
      `req/s (gateway CPU ${pct(cpu)}, ${perRequest(cpu, rps)})`
    )
    row(`/internal/send batch=${batch} gateway CPU per request`, (cpu * 1e6) / rps, "µs")
    if (batch > 1) row(`/internal/send batch=${batch} events/s`, rps * batch, "ev/s")
  }
  await keyClient.close()
  for (const subs of [0, clients]) {
    const s = subs > 0 ? await subscribe(gateway.port, "/subscribe?topic=bench", subs, false) : undefined
    for (const batch of [1, 50]) {
      const [rps, cpu] = await withCpu(
        gateway.pid,
        () => load(gateway.port, 16, "/publish", publishBody(batch))
      )
      row(
        `/publish batch=${batch} subscribers=${subs} req/s`,
        rps,
        `req/s (gateway CPU ${pct(cpu)}, ${perRequest(cpu, rps)})`
      )
      row(`/publish batch=${batch} subscribers=${subs} gateway CPU per request`, (cpu * 1e6) / rps, "µs")
      if (batch > 1) row(`/publish batch=${batch} subscribers=${subs} events/s`, rps * batch, "ev/s")
    }
    await s?.close()
  }
}

const fanoutScenario = async (row: Row, gateway: Child, hub: Child) => {
  // fan-out, closed loop
  const fanout = async (port: number, path: string, burst: () => Promise<number>) => {
    const s = await subscribe(port, path, clients, false)
    const batch = 100
    const deadline = performance.now() + seconds * 1000
    const start = performance.now()
    let target = 0
    while (performance.now() < deadline) {
      target += batch * clients
      await burst()
      await s.waitFor(target)
    }
    const rate = (await s.received()) / ((performance.now() - start) / 1000)
    await s.close()
    return rate
  }
  const [viaGateway, gCpu] = await withCpu(gateway.pid, () =>
    fanout(
      gateway.port,
      "/subscribe?topic=bench",
      () => post(gateway.port, "/publish", publishBody(100))
    ))
  const [viaHub, hCpu] = await withCpu(
    hub.pid,
    () => fanout(hub.port, "/subscribe", () => post(hub.port, "/burst?n=100", ""))
  )
  row(`fan-out gateway (${clients} subscribers) deliveries/s`, viaGateway, `del/s (CPU ${pct(gCpu)})`)
  row(`fan-out in-process hub (${clients} subscribers) deliveries/s`, viaHub, `del/s (CPU ${pct(hCpu)})`)
  row("fan-out ratio gateway / hub", viaGateway / viaHub, "x")
}

const latencyScenario = async (row: Row, gateway: Child, hub: Child) => {
  // latency, paced
  const paced = async (port: number, path: string, send: (t: number) => Promise<number>) => {
    const s = await subscribe(port, path, clients, true)
    const count = Math.round(100 * seconds)
    for (let i = 0; i < count; i++) {
      const next = performance.now() + 10
      await send(performance.timeOrigin + performance.now())
      const wait = next - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
    await s.waitFor(count * clients)
    const latencies = await s.latencies()
    await s.close()
    return { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) }
  }
  const [[gLat, gFarm], gCpu] = await withCpu(gateway.pid, () =>
    withCpu(farm.pid, () =>
      paced(
        gateway.port,
        "/subscribe?topic=bench",
        (t) => post(gateway.port, "/publish", publishBody(1, t))
      )))
  const [[hLat, hFarm], hCpu] = await withCpu(
    hub.pid,
    () => withCpu(farm.pid, () => paced(hub.port, "/subscribe", (t) => post(hub.port, `/burst?n=1&t=${t}`, "")))
  )
  console.log(
    `  (CPU during the latency runs: gateway ${pct(gCpu)}, its subscribers ${pct(gFarm)}; hub ${
      pct(hCpu)
    }, its subscribers ${pct(hFarm)})`
  )
  row(`publish-to-receive p50 gateway (${clients} subscribers)`, gLat.p50, "ms")
  row(`publish-to-receive p99 gateway (${clients} subscribers)`, gLat.p99, "ms")
  row(`publish-to-receive p50 in-process hub`, hLat.p50, "ms")
  row(`publish-to-receive p99 in-process hub`, hLat.p99, "ms")
  row(
    "slow consumers disconnected, gateway",
    await slowConsumers(gateway.port, "sluice_gateway_slow_consumers_total"),
    ""
  )
}

main().then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
