/**
 * The HTTP SSE benchmark runner: `pnpm bench` (quick) or `pnpm bench --full`.
 *
 * Options: `--full`, `--rounds=N`, `--peers=a,b` (raw is always added: every figure is a
 * ratio to it), `--scenarios=fanout-100,churn`. Peers are the files in `peers/`. Each round
 * runs every peer once per scenario, in the same order (A B C … A B C …), each in a fresh
 * server process; the results are the medians over rounds. A run of the whole set writes
 * `bench/results/latest.{md,json,svg}` and the README's results section; a partial run writes
 * to `bench/results/tmp/`.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { fileURLToPath } from "node:url"
import { chart } from "./Chart.ts"
import { otherCores, snapshot, waitForQuiet } from "./Load.ts"
import { childFileLimit, type ClientChild, placement, profileInto, startClients } from "./Processes.ts"
import { type Meta, type PeerRounds, type Rounds, summarize, summaryTable, toJson, toMarkdown } from "./Report.ts"
import { full, type Metrics, quick, type Scenario, scenarios as allScenarios, type Settings } from "./Scenarios.ts"
import { selfCheck } from "./SseParser.ts"

const args = process.argv.slice(2)
const option = (name: string): string | undefined =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const list = (name: string) => option(name)?.split(",").filter((s) => s.length > 0)

/**
 * The servers load the workspace packages from `dist/`, as users do: bring it up to date first
 * (incremental, well under a second when nothing changed).
 */
const build = (): void => {
  const tsc = fileURLToPath(new URL("../../node_modules/.bin/tsc", import.meta.url))
  execFileSync(tsc, ["-b"], { cwd: fileURLToPath(new URL("../../", import.meta.url)), stdio: "inherit" })
}

/** Bad command-line input: say why and stop, without a stack trace. */
const usage: (message: string) => never = (message) => {
  console.error(`${message}\noptions: --full --rounds=N --peers=a,b --scenarios=x,y --profile[=server|client|both]`)
  process.exit(2)
}

const known = ["full", "rounds", "peers", "scenarios", "profile"]
for (const arg of args) {
  const name = arg.replace(/^--/, "").split("=")[0] ?? ""
  if (arg === "--") continue
  if (!arg.startsWith("--") || !known.includes(name)) usage(`unknown option ${arg}`)
}

const base: Settings = args.includes("--full") ? full : quick
const rounds = Number(option("rounds") ?? base.rounds)
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) usage("--rounds must be 1..20")
const settings: Settings = { ...base, rounds }

// Peers: every file in peers/, raw first, then the order of the issue, then the others.
const preferred = ["raw", "better-sse", "hono", "effect", "sluice"]
const found = readdirSync(new URL("./peers/", import.meta.url))
  .filter((file) => file.endsWith(".ts"))
  .map((file) => file.slice(0, -3))
const ordered = [
  ...preferred.filter((p) => found.includes(p)),
  ...found.filter((p) => !preferred.includes(p)).toSorted()
]
const askedPeers = list("peers")
for (const p of askedPeers ?? []) if (!found.includes(p)) usage(`no peer ${p} (have ${found.join(", ")})`)
// Peers that need an external service run only when asked for by name.
const optIn = new Set(["sluice-redis"])
const peers = askedPeers === undefined
  ? ordered.filter((p) => !optIn.has(p))
  : ordered.filter((p) => p === "raw" || askedPeers.includes(p))

selfCheck()
build()
const where = placement()
const profile = args.includes("--profile") ? "server" : option("profile")
if (profile !== undefined) {
  if (profile !== "server" && profile !== "client" && profile !== "both") {
    usage("--profile=server|client|both")
  }
  const dir = new URL("../results/tmp/profiles/", import.meta.url).pathname
  mkdirSync(dir, { recursive: true })
  profileInto(dir, profile)
  console.log(`CPU profiles (${profile}) go to ${dir}`)
}
const clientCount = 1
const fileLimit = childFileLimit()
const notes: Array<string> = []
// A connection takes one descriptor in the server and one in a client process: a process
// holds at most this many (the hold scenario adds client processes, the server has one).
const fit = Math.max(100, fileLimit - 256)
const mostIdle = settings.idle.steps[settings.idle.steps.length - 1]!
if (fit < mostIdle) notes.push(`idle: ${fit} connections instead of ${mostIdle} (open-file limit ${fileLimit})`)
if (fit < settings.hold.connections) {
  notes.push(
    `hold: ${fit} connections instead of ${settings.hold.connections}: the open-file limit of one process is ` +
      `${fileLimit} here (its hard limit; raising it needs privileges this machine does not give)`
  )
}
const all = allScenarios(settings, fit)
const askedScenarios = list("scenarios")
for (const s of askedScenarios ?? []) {
  if (!all.some((x) => x.name === s)) usage(`no scenario ${s} (have ${all.map((x) => x.name).join(", ")})`)
}
const scenarios: ReadonlyArray<Scenario> = all.filter((s) => askedScenarios?.includes(s.name) ?? true)
const partial = askedPeers !== undefined || askedScenarios !== undefined

// Bounds the whole run: past this, no new run starts and the report says so.
const budgetS = settings.mode === "full" ? 75 * 60 : 10 * 60
const started = performance.now()
const elapsedS = () => (performance.now() - started) / 1000

console.log(
  `sluice bench (${settings.mode}): ${peers.join(", ")} × ${scenarios.map((s) => s.name).join(", ")}, ` +
    `${rounds} round(s); ${where.note}; open-file limit ${fileLimit}`
)

let clients: ReadonlyArray<ClientChild> = await startClients(clientCount, where)
const results: Rounds = new Map()
const loads: Array<{ readonly run: string; readonly cores: number }> = []
const descriptions: Record<string, string> = {}

const summaryLine = (scenario: Scenario, metrics: Record<string, number>) =>
  scenario.metrics
    .filter((m) => m.check === undefined)
    .slice(0, 4)
    .map((m) => `${m.label} ${Number((metrics[m.key] ?? Number.NaN).toPrecision(3))}${m.unit === "/s" ? "/s" : m.unit}`)
    .join(", ")

// Peers that run only where a scenario names them (raw-coalesced: the trickle scenario;
// platform: none, it is the floor `bench/memory/instructions.ts` compares).
const scenarioOnly = ["raw-coalesced", "platform"]
const peersOf = (scenario: Scenario) =>
  peers.filter((p) => scenario.peers === undefined ? !scenarioOnly.includes(p) : scenario.peers.includes(p))

outer: for (const scenario of scenarios) {
  const scenarioPeers = peersOf(scenario)
  const byPeer = new Map<string, PeerRounds>(scenarioPeers.map((p) => [p, { rounds: [], errors: [] }]))
  results.set(scenario.name, byPeer)
  for (let round = 1; round <= rounds; round++) {
    for (const peer of scenarioPeers) {
      if (elapsedS() > budgetS) {
        notes.push(`time budget of ${budgetS} s reached: ${scenario.name} round ${round} and later were not run`)
        break outer
      }
      const label = `[${scenario.name} ${round}/${rounds}] ${peer.padEnd(10)}`
      // A run disturbed by other processes is tried again; the least disturbed try is kept.
      let kept: { readonly metrics: Metrics; readonly other: number } | undefined
      for (let attempt = 0; attempt <= settings.retries; attempt++) {
        await waitForQuiet(clients.map((c) => c.pid), settings.quietBelowCores, settings.quietWaitMs)
        const runStart = performance.now()
        const from = snapshot(clients.map((c) => c.pid))
        try {
          const metrics = await scenario.run({ peer, where, clients, settings })
          const other = otherCores(from, snapshot(clients.map((c) => c.pid)))
          const checks = scenario.metrics.filter((m) => m.check !== undefined && (metrics[m.key] ?? 0) !== 0)
          console.log(
            `${label} ${summaryLine(scenario, metrics)}` +
              (checks.length > 0 ? `  !! ${checks.map((m) => `${m.label}=${metrics[m.key]}`).join(" ")}` : "") +
              `  (${((performance.now() - runStart) / 1000).toFixed(1)} s, other load ${other.toFixed(2)} cores)`
          )
          if (kept === undefined || !(other >= kept.other)) kept = { metrics, other }
          if (!(other > settings.retryAboveCores)) break
          if (attempt < settings.retries) console.log(`${label} disturbed: trying again`)
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error)
          byPeer.get(peer)!.errors.push(message)
          console.log(`${label} FAILED: ${message}`)
          // A failed run may leave the load clients with state: start fresh ones.
          await Promise.all(clients.map((c) => c.stop()))
          clients = await startClients(clientCount, where)
          break
        }
      }
      if (kept !== undefined) {
        byPeer.get(peer)!.rounds.push(kept.metrics)
        loads.push({ run: `${scenario.name} ${round}/${rounds} ${peer}`, cores: kept.other })
      }
    }
  }
}
await Promise.all(clients.map((c) => c.stop()))

// The descriptions come from the peers themselves.
for (const peer of peers) {
  const module = (await import(new URL(`./peers/${peer}.ts`, import.meta.url).href)) as {
    peer: { description: string }
  }
  descriptions[peer] = module.peer.description
}

const measured = loads.filter((l) => Number.isFinite(l.cores))
if (measured.length > 0) {
  const mean = measured.reduce((total, l) => total + l.cores, 0) / measured.length
  const busy = measured.filter((l) => l.cores > settings.retryAboveCores)
  notes.push(
    `other processes on the machine used ${mean.toFixed(2)} cores on average during the runs kept` +
      (busy.length === 0
        ? ""
        : `; more than ${settings.retryAboveCores} cores during ${busy.length} of ${measured.length} (max ${
          Math.max(...busy.map((l) => l.cores)).toFixed(2)
        }: ${busy.toSorted((a, b) => b.cores - a.cores)[0]!.run})`)
  )
}
const summary = summarize(scenarios, peers, results)
const meta: Meta = {
  date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  mode: settings.mode + (partial ? ", partial" : ""),
  rounds,
  node: process.versions.node,
  cpu: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown CPU"}`,
  placement: where.note,
  durationS: elapsedS(),
  peers: descriptions,
  notes
}
const markdown = toMarkdown(meta, scenarios, peers, summary)
const svg = chart(peers, summary, `sluice bench (${meta.mode}), ${meta.date}, Node ${meta.node}`)
const dir = new URL(partial ? "../results/tmp/" : "../results/", import.meta.url)
mkdirSync(dir, { recursive: true })
writeFileSync(new URL("latest.md", dir), markdown)
writeFileSync(new URL("latest.json", dir), JSON.stringify(toJson(summary), null, 2) + "\n")
writeFileSync(new URL("latest.svg", dir), svg)

// A full run of the whole set also refreshes the results section of the README.
if (settings.mode === "full" && !partial) {
  const readme = new URL("../README.md", import.meta.url)
  const text = readFileSync(readme, "utf8")
  const startMark = "<!-- results:start -->"
  const endMark = "<!-- results:end -->"
  const from = text.indexOf(startMark)
  const to = text.indexOf(endMark)
  if (from !== -1 && to > from) {
    const section = [
      startMark,
      "",
      `Last full run: ${meta.date}, Node ${meta.node}, ${meta.cpu}, ${meta.placement}; medians of ${rounds} ` +
      "rounds, (Nx) = ratio to raw. Every scenario's table: [results/latest.md](results/latest.md).",
      "",
      summaryTable(peers, summary),
      "",
      "![deliveries/s and p99 by peer](results/latest.svg)",
      "",
      endMark
    ].join("\n")
    writeFileSync(readme, text.slice(0, from) + section + text.slice(to + endMark.length))
  }
  // The same table in the repository's README.
  const top = new URL("../../README.md", import.meta.url)
  const topText = readFileSync(top, "utf8")
  const [start, end] = ["<!-- bench:start -->", "<!-- bench:end -->"]
  const at = topText.indexOf(start)
  const until = topText.indexOf(end)
  if (at !== -1 && until > at) {
    writeFileSync(
      top,
      `${topText.slice(0, at)}${start}\n${summaryTable(peers, summary)}\n${topText.slice(until)}`
    )
  }
}

console.log("\n" + markdown)
console.log(`written to ${new URL(".", new URL("latest.md", dir)).pathname} in ${elapsedS().toFixed(0)} s`)

// The full set ends with the overload attacks at full size (bench/overload).
if (settings.mode === "full" && !partial) {
  execFileSync(process.execPath, [fileURLToPath(new URL("../overload/run.ts", import.meta.url))], { stdio: "inherit" })
}
