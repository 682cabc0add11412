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
// --under=<text>: only the samples whose stack holds a frame matching <text>.
const under = args.find((a) => a.startsWith("--under="))?.slice(8)
const parents = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n.id)
const isUnder = (id: number): boolean => {
  for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
    const f = byId.get(at)!.callFrame
    if (`${f.functionName} ${f.url}:${f.lineNumber + 1}`.includes(under!)) return true
  }
  return false
}
const self = new Map<number, number>()
let elapsedUs = 0
for (let i = 0; i < profile.samples.length; i++) {
  elapsedUs += profile.timeDeltas[i] ?? 0
  if (elapsedUs < skipUs) continue
  if (under !== undefined && !isUnder(profile.samples[i]!)) continue
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

// --inclusive=a,b,c: time of the samples whose stack holds a frame matching each text
// (each sample counted once per text): what a code path costs with everything it calls.
const inclusive = args.find((a) => a.startsWith("--inclusive="))?.slice(12)
if (inclusive !== undefined) {
  const parentOf = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  const texts = inclusive.split(",")
  const totals = new Map(texts.map((t) => [t, 0]))
  for (const [id, us] of self) {
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const f = byId.get(at)!.callFrame
      const label = `${f.functionName} ${f.url}:${f.lineNumber + 1}`
      for (const t of texts) if (!seen.has(t) && label.includes(t)) seen.add(t)
    }
    for (const t of seen) totals.set(t, totals.get(t)! + us)
  }
  console.log("\ninclusive:")
  for (const [t, us] of totals) {
    console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${t}`)
  }
}

// --children=<text>: for frames matching <text>, inclusive time by the frame right below them.
const children = args.find((a) => a.startsWith("--children="))?.slice(11)
if (children !== undefined) {
  const parentOf = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  const label = (id: number) => {
    const f = byId.get(id)!.callFrame
    return `${f.functionName || "(anon)"} ${
      f.url.replace(/^.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "").replace(/^.*\/packages\//, "")
    }:${f.lineNumber + 1}`
  }
  const below = new Map<string, number>()
  for (const [id, us] of self) {
    let child: number | undefined = undefined
    for (let at: number | undefined = id; at !== undefined; child = at, at = parentOf.get(at)) {
      if (label(at).includes(children)) {
        const key = child === undefined ? "(self)" : label(child)
        below.set(key, (below.get(key) ?? 0) + us)
        break
      }
    }
  }
  console.log(`\nbelow ${children}:`)
  for (const [k, us] of [...below].toSorted((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms  ${k}`)
  }
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
