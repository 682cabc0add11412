/**
 * The results chart as a self-contained SVG (no dependency): fan-out deliveries/s and p99
 * latency by peer, as horizontal bars labelled with value and ratio to raw.
 */
import { formatValue, type Summary } from "./Report.ts"

interface Series {
  readonly scenario: string
  readonly metric: string
  readonly label: string
  readonly unit: string
  readonly color: string
}

interface Panel {
  readonly title: string
  readonly series: ReadonlyArray<Series>
}

const panels: ReadonlyArray<Panel> = [
  {
    title: "Fan-out deliveries/s (higher is better)",
    series: [
      { scenario: "fanout-100", metric: "deliveriesPerSec", label: "C=100", unit: "/s", color: "#4e79a7" },
      { scenario: "fanout-1000", metric: "deliveriesPerSec", label: "C=1000", unit: "/s", color: "#f28e2b" }
    ]
  },
  {
    title: "p99 latency, paced 1 000 clients at 20 events/s (lower is better)",
    series: [{ scenario: "paced-1000", metric: "p99Ms", label: "paced", unit: "ms", color: "#59a14f" }]
  },
  {
    title: "p99 latency under saturation, fan-out (lower is better)",
    series: [
      { scenario: "fanout-100", metric: "p99Ms", label: "C=100", unit: "ms", color: "#4e79a7" },
      { scenario: "fanout-1000", metric: "p99Ms", label: "C=1000", unit: "ms", color: "#f28e2b" }
    ]
  }
]

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

export const chart = (peers: ReadonlyArray<string>, summary: Summary, caption: string): string => {
  const width = 900
  const labelWidth = 110
  const barArea = 520
  const barHeight = 16
  const gap = 4
  const parts: Array<string> = []
  let y = 30
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">${escape(caption)}</text>`)
  for (const panel of panels) {
    const present = panel.series.filter((s) => summary[s.scenario] !== undefined)
    if (present.length === 0) continue
    y += 24
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${escape(panel.title)}</text>`)
    y += 8
    const values = present.flatMap((s) => peers.map((p) => summary[s.scenario]?.[p]?.medians[s.metric] ?? 0))
    const max = Math.max(...values.filter((v) => Number.isFinite(v)), 1e-9)
    for (const peer of peers) {
      const top = y
      for (const s of present) {
        const figures = summary[s.scenario]?.[peer]
        const value = figures?.medians[s.metric] ?? null
        const ratio = figures?.ratioToRaw[s.metric] ?? null
        const length = value === null ? 0 : Math.max(1, (value / max) * barArea)
        parts.push(
          `<rect x="${labelWidth}" y="${y}" width="${length.toFixed(1)}" height="${barHeight}" fill="${s.color}"/>`
        )
        const text = `${s.label}: ${formatValue(value, s.unit)}${
          peer !== "raw" && ratio !== null ? ` (${Number(ratio.toPrecision(2))}x)` : ""
        }`
        parts.push(
          `<text x="${labelWidth + length + 6}" y="${y + barHeight - 4}" font-size="11">${escape(text)}</text>`
        )
        y += barHeight + gap
      }
      const middle = (top + y - gap) / 2 + 4
      parts.push(`<text x="${labelWidth - 8}" y="${middle}" font-size="12" text-anchor="end">${escape(peer)}</text>`)
      y += 6
    }
  }
  const height = y + 16
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}
