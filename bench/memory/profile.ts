/**
 * Summarizes a V8 CPU profile (`.cpuprofile`, from `--cpu-prof` or `pnpm bench --profile`):
 * self time by area (node internals, effect, the platform, sluice's packages, GC, idle) and
 * the top functions by self time.
 *
 * ```sh
 * node bench/memory/profile.ts bench/results/tmp/profiles/CPU.….cpuprofile [--top=40] [--skip=ms]
 * ```
 */
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith("--"))
if (file === undefined) {
  console.error("usage: profile.ts <file.cpuprofile> [--top=40]")
  process.exit(2)
}
const top = Number(args.find((a) => a.startsWith("--top="))?.slice(6) ?? "40")
// Samples in the first `skip` ms (start-up: module loading, compilation) are left out.
const skipUs = Number(args.find((a) => a.startsWith("--skip="))?.slice(7) ?? "0") * 1000
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
let at = 0
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  if (at < skipUs) continue
  self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0))
}
const area = (url: string, name: string): string => {
  if (name === "(garbage collector)") return "gc"
  if (name === "(idle)") return "idle"
  if (name === "(program)") return "program"
  if (url === "") return "native"
  if (url.startsWith("node:")) return "node"
  if (url.includes("/platform-node")) return "@effect/platform-node"
  if (url.includes("/effect/dist/") || url.includes("/effect/src/")) {
    const m = /effect\/(?:dist|src)\/(http|internal|[A-Za-z]+)/.exec(url)
    return m?.[1] === "http" ? "effect/http" : "effect"
  }
  if (url.includes("/core/")) return "@sluice/core"
  if (url.includes("/http/dist") || url.includes("packages/http/")) return "@sluice/http"
  return "other"
}
const areas = new Map<string, number>()
const fns = new Map<string, number>()
let all = 0
for (const [id, us] of self) {
  const n = byId.get(id)!
  const { functionName, lineNumber, url } = n.callFrame
  const a = area(url, functionName)
  all += us
  areas.set(a, (areas.get(a) ?? 0) + us)
  const short = url.replace(/^.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "").replace(/^.*\/packages\//, "")
  const key = `${functionName || "(anonymous)"} ${short}:${lineNumber + 1}`
  fns.set(key, (fns.get(key) ?? 0) + us)
}
const busy = all - (areas.get("idle") ?? 0)
console.log(`total ${(all / 1e3).toFixed(0)} ms, busy ${(busy / 1e3).toFixed(0)} ms`)
for (const [a, us] of [...areas].toSorted((x, y) => y[1] - x[1])) {
  console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${a}`)
}
console.log("")
for (const [f, us] of [...fns].toSorted((x, y) => y[1] - x[1]).slice(0, top)) {
  console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${f}`)
}

// --callers=<text>: for functions whose name or location contains <text>, their self time by
// caller chain (--depth frames up), to see who calls an expensive helper.
const callers = args.find((a) => a.startsWith("--callers="))?.slice(10)
if (callers !== undefined) {
  const depth = Number(args.find((a) => a.startsWith("--depth="))?.slice(8) ?? "5")
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (n: Node) => {
    const url = n.callFrame.url.replace(/^.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "").replace(
      /^.*\/packages\//,
      ""
    )
    return `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber + 1}`
  }
  const chains = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)!
    if (!label(n).includes(callers)) continue
    const chain: Array<string> = []
    let p = parent.get(id)
    while (p !== undefined && chain.length < depth) {
      chain.push(label(byId.get(p)!))
      p = parent.get(p)
    }
    const key = `${label(n)}\n      <- ${chain.join("\n      <- ")}`
    chains.set(key, (chains.get(key) ?? 0) + us)
  }
  console.log(`\ncallers of ${callers}:`)
  for (const [k, us] of [...chains].toSorted((x, y) => y[1] - x[1]).slice(0, top)) {
    console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms  ${k}`)
  }
}
