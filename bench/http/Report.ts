/**
 * Turning the rounds into results: medians, ratios to `raw`, the JSON file, the markdown
 * tables.
 *
 * `latest.json` is `{ [scenario]: { [peer]: figures } }` where `figures` holds the median of
 * every metric by key (`"deliveriesPerSec": 1412345`), `ratioToRaw` with the same keys (the
 * peer's median divided by raw's median in the same run), `rounds` with every round's value
 * by key, and `errors` (messages of the rounds that failed, if any). Missing values are null.
 */
import type { Metrics, Scenario } from "./Scenarios.ts"

/** What a peer did in one scenario, round by round. */
export interface PeerRounds {
  readonly rounds: Array<Metrics>
  readonly errors: Array<string>
}

/** Scenario name → peer name → rounds. */
export type Rounds = Map<string, Map<string, PeerRounds>>

/** A peer's figures in one scenario: medians, ratios to raw, every round, failures. */
export interface PeerSummary {
  readonly medians: Readonly<Record<string, number | null>>
  readonly ratioToRaw: Readonly<Record<string, number | null>>
  readonly rounds: Readonly<Record<string, ReadonlyArray<number | null>>>
  readonly errors: ReadonlyArray<string>
}

/** Scenario name → peer name → summary. */
export type Summary = Record<string, Record<string, PeerSummary>>

/** Header facts of a run. */
export interface Meta {
  readonly date: string
  readonly mode: string
  readonly rounds: number
  readonly node: string
  readonly cpu: string
  readonly placement: string
  readonly durationS: number
  readonly peers: Readonly<Record<string, string>>
  readonly notes: ReadonlyArray<string>
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).toSorted((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const finite = (value: number): number | null => (Number.isFinite(value) ? value : null)

const round = (value: number): number => Number(value.toPrecision(6))

export const summarize = (
  scenarios: ReadonlyArray<Scenario>,
  peers: ReadonlyArray<string>,
  rounds: Rounds
): Summary => {
  const summary: Summary = {}
  for (const scenario of scenarios) {
    const byPeer = rounds.get(scenario.name)
    if (byPeer === undefined) continue
    const medianOf = (peer: string, key: string) =>
      median(byPeer.get(peer)?.rounds.map((r) => r[key] ?? Number.NaN) ?? [])
    const entry: Record<string, PeerSummary> = {}
    for (const peer of peers) {
      const result = byPeer.get(peer)
      if (result === undefined) continue
      const medians: Record<string, number | null> = {}
      const ratioToRaw: Record<string, number | null> = {}
      const perRound: Record<string, ReadonlyArray<number | null>> = {}
      for (const { key } of scenario.metrics) {
        const value = medianOf(peer, key)
        const base = medianOf("raw", key)
        medians[key] = finite(round(value))
        ratioToRaw[key] = base !== 0 ? finite(round(value / base)) : null
        perRound[key] = result.rounds.map((r) => finite(round(r[key] ?? Number.NaN)))
      }
      entry[peer] = { medians, ratioToRaw, rounds: perRound, errors: result.errors }
    }
    summary[scenario.name] = entry
  }
  return summary
}

/**
 * The shape of `latest.json`: `{ [scenario]: { [peer]: { <metric>: median, ...,
 * ratioToRaw: { <metric>: ratio }, rounds: { <metric>: [value per round] }, errors?: [...] } } }`.
 */
export const toJson = (summary: Summary): unknown =>
  Object.fromEntries(
    Object.entries(summary).map(([scenario, byPeer]) => [
      scenario,
      Object.fromEntries(
        Object.entries(byPeer).map(([peer, s]) => [
          peer,
          {
            ...s.medians,
            ratioToRaw: s.ratioToRaw,
            rounds: s.rounds,
            ...(s.errors.length > 0 ? { errors: s.errors } : {})
          }
        ])
      )
    ])
  )

const sig = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v.toPrecision(3)).toString())

/** Formats a value with its unit, with 3 significant digits. */
export const formatValue = (value: number | null | undefined, unit: string): string => {
  if (value === null || value === undefined || !Number.isFinite(value)) return "n/a"
  if (unit === "/s") {
    if (value >= 1e6) return `${sig(value / 1e6)} M/s`
    if (value >= 1e3) return `${sig(value / 1e3)} k/s`
    return `${sig(value)} /s`
  }
  if (unit === "") return Number.isInteger(value) ? String(value) : sig(value)
  return `${sig(value)} ${unit}`
}

const ratioText = (ratio: number | null | undefined): string =>
  ratio === null || ratio === undefined ? "" : ` (${Number(ratio.toPrecision(2))}x)`

const cell = (figures: PeerSummary | undefined, key: string, unit: string, peer: string): string => {
  if (figures === undefined) return "n/a"
  const value = figures.medians[key] ?? null
  return formatValue(value, unit) + (peer === "raw" || value === null ? "" : ratioText(figures.ratioToRaw[key]))
}

/** The columns of the summary table: one headline figure per scenario. */
const summaryColumns: ReadonlyArray<readonly [scenario: string, metric: string, label: string, unit: string]> = [
  ["fanout-100", "deliveriesPerSec", "fan-out C=100", "/s"],
  ["fanout-100", "p99Ms", "p99 (C=100)", "ms"],
  ["fanout-1000", "deliveriesPerSec", "fan-out C=1000", "/s"],
  ["fanout-1000", "cpuSecPerMDeliveries", "CPU s / 1M deliveries (C=1000)", "s"],
  ["paced-1000", "p99Ms", "paced p99", "ms"],
  ["single-stream", "eventsPerSec", "single stream", "/s"],
  ["trickle", "deliveriesPerSec", "trickle", "/s"],
  ["churn", "connPerSec", "churn", "/s"],
  ["idle", "rssPerConnKiB5000", "RSS/conn (5 000 idle)", "KiB"],
  ["idle", "heapPerConnKiB", "heap/conn (idle)", "KiB"],
  ["hold", "rssPerConnKiB", "RSS/conn (hold)", "KiB"],
  ["storm", "liveMs", "storm: all receiving", "ms"]
]

/** The summary table alone (also put in the README). */
export const summaryTable = (peers: ReadonlyArray<string>, summary: Summary): string => {
  const columns = summaryColumns.filter(([scenario]) => summary[scenario] !== undefined)
  const lines = [
    `| peer | ${columns.map(([, , label]) => label).join(" | ")} |`,
    `| --- | ${columns.map(() => "---:").join(" | ")} |`
  ]
  for (const peer of peers) {
    // A peer that runs in a few scenarios only (raw-coalesced) has no line of its own here.
    if (columns.filter(([scenario]) => summary[scenario]?.[peer] !== undefined).length < 2) continue
    const cells = columns.map(([scenario, metric, , unit]) =>
      summary[scenario]?.[peer] === undefined ? "" : cell(summary[scenario]?.[peer], metric, unit, peer)
    )
    lines.push(`| ${peer} | ${cells.join(" | ")} |`)
  }
  return lines.join("\n")
}

export const toMarkdown = (
  meta: Meta,
  scenarios: ReadonlyArray<Scenario>,
  peers: ReadonlyArray<string>,
  summary: Summary
): string => {
  const out: Array<string> = [
    `# HTTP SSE benchmark (${meta.mode})`,
    "",
    `${meta.date}, ${meta.durationS.toFixed(0)} s. Node ${meta.node}, ${meta.cpu}; ${meta.placement}. ` +
    `Medians of ${meta.rounds} rounds, peers alternating within each round; (Nx) = ratio to raw in the same run.`,
    "",
    summaryTable(peers, summary),
    ""
  ]
  for (const scenario of scenarios) {
    const byPeer = summary[scenario.name]
    if (byPeer === undefined) continue
    const shown = scenario.metrics.filter((m) => m.check === undefined)
    const checks = scenario.metrics.filter((m) => m.check !== undefined)
    out.push(`## ${scenario.title} (\`${scenario.name}\`)`, "", scenario.measures, "")
    out.push(`| peer | ${shown.map((m) => m.label).join(" | ")} | checks |`)
    out.push(`| --- | ${shown.map(() => "---:").join(" | ")} | --- |`)
    for (const peer of peers) {
      if (!(peer in byPeer)) continue
      const figures = byPeer[peer]
      const cells = shown.map((m) => cell(figures, m.key, m.unit, peer))
      const bad = figures === undefined
        ? ["no result"]
        : checks.filter((m) => (figures.medians[m.key] ?? 0) !== 0).map((m) =>
          `${m.label}: ${formatValue(figures.medians[m.key], "")}`
        )
      if (figures !== undefined && figures.errors.length > 0) bad.push(`${figures.errors.length} round(s) failed`)
      out.push(`| ${peer} | ${cells.join(" | ")} | ${bad.length === 0 ? "ok" : bad.join(", ")} |`)
    }
    out.push("")
  }
  out.push("## Peers", "")
  for (const peer of peers) out.push(`- \`${peer}\`: ${meta.peers[peer] ?? "?"}`)
  if (meta.notes.length > 0) out.push("", "## Notes", "", ...meta.notes.map((n) => `- ${n}`))
  const errors: Array<string> = []
  for (const scenario of scenarios) {
    for (const peer of peers) {
      for (const message of summary[scenario.name]?.[peer]?.errors ?? []) {
        errors.push(`- ${scenario.name} / ${peer}: ${message.split("\n")[0]}`)
      }
    }
  }
  if (errors.length > 0) out.push("", "## Failed rounds", "", ...errors)
  return out.join("\n") + "\n"
}
