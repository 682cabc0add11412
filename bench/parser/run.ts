// SSE parser benchmark: sluice's parser against eventsource-parser and effect's own Sse decoder,
// on the same bytes, chunked the same way, in the same process and run.
//
//   node_modules/.bin/node bench/parser/run.ts [--quick]
//
// Every parser gets bytes (a client reads bytes off a socket): the peers, which take text, get
// them through a streaming TextDecoder, as their own stream helpers do. Rounds are interleaved
// (A B C A B C ...) and the median round is reported, so drift hits every parser alike.
// Results go to stdout and bench/results/parser.md.
import { spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

// Measure the TypeScript sources, not a possibly stale dist/: re-run with the source condition.
if (!import.meta.resolve("@sluice/core").endsWith("/src/index.ts")) {
  const child = spawnSync(
    process.execPath,
    ["--conditions=@sluice/source", fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: "inherit" }
  )
  process.exit(child.status ?? 1)
}

const { SseParser } = await import("@sluice/core")
const { Effect, Stream } = await import("effect")
const { Sse } = await import("effect/encoding")
const { createParser } = await import("eventsource-parser")

const quick = process.argv.includes("--quick")
const roundMillis = quick ? 60 : 250
const rounds = quick ? 3 : 7

// Inputs ------------------------------------------------------------------------------------------

interface Input {
  readonly name: string
  readonly bytes: Uint8Array
  readonly events: number
}

const encoder = new TextEncoder()

const smallEvents = (count: number): Input => {
  let text = ""
  for (let i = 0; i < count; i++) text += `id: ${i}\nevent: tick\ndata: {"n":${i},"msg":"hello world"}\n\n`
  return { name: "small events (~55 B)", bytes: encoder.encode(text), events: count }
}

const largeEvents = (count: number, lines: number, width: number): Input => {
  const line = "x".repeat(width - 12)
  let text = ""
  for (let i = 0; i < count; i++) {
    text += `id: ${i}\n`
    for (let j = 0; j < lines; j++) text += `data: ${String(j).padStart(5, "0")} ${line}\n`
    text += "\n"
  }
  return { name: `large events (${lines} lines x ${width} B)`, bytes: encoder.encode(text), events: count }
}

const unicodeEvents = (count: number): Input => {
  let text = ""
  for (let i = 0; i < count; i++) {
    text += `data: {"text":"h\u00e9llo w\u00f6rld \u4e2d\u6587 \ud83d\ude00","n":${i}}\n\r\n`
  }
  return { name: "non-ASCII events, CRLF", bytes: encoder.encode(text), events: count }
}

const inputs: ReadonlyArray<Input> = [smallEvents(50_000), largeEvents(500, 50, 80), unicodeEvents(30_000)]
const chunkSizes = [64, 1024, 16384, 65536] as const

const chunk = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size))
  return out
}

// Contenders: each parses all chunks and returns how many events it saw -------------------------

interface Contender {
  readonly name: string
  readonly run: (chunks: ReadonlyArray<Uint8Array>) => number | Promise<number>
}

const contenders: ReadonlyArray<Contender> = [
  {
    name: "sluice makeParser",
    run: (chunks) => {
      let n = 0
      const parser = SseParser.makeParser({ onEvent: () => n++ })
      for (const c of chunks) parser.feed(c)
      parser.end()
      return n
    }
  },
  {
    name: "eventsource-parser",
    run: (chunks) => {
      let n = 0
      const decoder = new TextDecoder()
      const parser = createParser({ onEvent: () => n++ })
      for (const c of chunks) parser.feed(decoder.decode(c, { stream: true }))
      parser.feed(decoder.decode())
      return n
    }
  },
  {
    name: "effect Sse.makeParser",
    run: (chunks) => {
      let n = 0
      const decoder = new TextDecoder()
      const parser = Sse.makeParser(() => n++)
      for (const c of chunks) parser.feed(decoder.decode(c, { stream: true }))
      parser.feed(decoder.decode())
      return n
    }
  },
  {
    name: "sluice SseParser.events (Stream)",
    run: (chunks) => Effect.runPromise(Stream.runCount(SseParser.events(Stream.fromIterable(chunks))))
  },
  {
    name: "effect Sse.decode (Stream)",
    run: (chunks) =>
      Effect.runPromise(
        Stream.fromIterable(chunks).pipe(Stream.decodeText, Stream.pipeThroughChannel(Sse.decode()), Stream.runCount)
      )
  }
]

// Measurement ---------------------------------------------------------------------------------------

const measureRound = async (contender: Contender, chunks: ReadonlyArray<Uint8Array>, expected: number) => {
  const start = performance.now()
  let runs = 0
  let elapsed = 0
  do {
    const seen = await contender.run(chunks)
    if (seen !== expected) throw new Error(`${contender.name} saw ${seen} events, expected ${expected}`)
    runs++
    elapsed = performance.now() - start
  } while (elapsed < roundMillis)
  return elapsed / runs // ms per pass over the input
}

const median = (xs: ReadonlyArray<number>) => {
  const s = xs.toSorted((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

interface Row {
  readonly input: string
  readonly chunk: number
  readonly contender: string
  readonly eventsPerSec: number
  readonly mbPerSec: number
}

const rows: Array<Row> = []
for (const input of inputs) {
  for (const size of chunkSizes) {
    const chunks = chunk(input.bytes, size)
    for (const c of contenders) await measureRound(c, chunks, input.events) // warm-up
    const times = new Map<string, Array<number>>(contenders.map((c) => [c.name, []]))
    for (let r = 0; r < rounds; r++) {
      for (const c of contenders) times.get(c.name)!.push(await measureRound(c, chunks, input.events))
    }
    for (const c of contenders) {
      const ms = median(times.get(c.name)!)
      rows.push({
        input: input.name,
        chunk: size,
        contender: c.name,
        eventsPerSec: input.events / (ms / 1000),
        mbPerSec: input.bytes.length / 1e6 / (ms / 1000)
      })
    }
    process.stderr.write(".")
  }
}
process.stderr.write("\n")

// Report --------------------------------------------------------------------------------------------

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0)
const find = (input: string, size: number, name: string) =>
  rows.find((r) => r.input === input && r.chunk === size && r.contender === name)!

const lines: Array<string> = []
lines.push(`# SSE parser benchmark`)
lines.push("")
lines.push(`Node ${process.version}, ${rounds} interleaved rounds of ${roundMillis} ms, median round.`)
lines.push("Ratios are sluice / peer throughput (> 1 means sluice is faster).")
lines.push("")
lines.push("## Push parsers (bytes in, callbacks out)")
lines.push("")
lines.push(
  "| input | chunk | sluice events/s | sluice MB/s | eventsource-parser MB/s | effect Sse.makeParser MB/s | vs eventsource-parser | vs effect |"
)
lines.push("|---|---:|---:|---:|---:|---:|---:|---:|")
const ratios = { esp: [] as Array<number>, effect: [] as Array<number>, stream: [] as Array<number> }
for (const input of inputs) {
  for (const size of chunkSizes) {
    const ours = find(input.name, size, "sluice makeParser")
    const esp = find(input.name, size, "eventsource-parser")
    const eff = find(input.name, size, "effect Sse.makeParser")
    ratios.esp.push(ours.mbPerSec / esp.mbPerSec)
    ratios.effect.push(ours.mbPerSec / eff.mbPerSec)
    lines.push(
      `| ${input.name} | ${size} | ${fmt(ours.eventsPerSec)} | ${ours.mbPerSec.toFixed(0)} | ${
        esp.mbPerSec.toFixed(0)
      } | ${eff.mbPerSec.toFixed(0)} | ${(ours.mbPerSec / esp.mbPerSec).toFixed(2)}x | ${
        (ours.mbPerSec / eff.mbPerSec).toFixed(2)
      }x |`
    )
  }
}
lines.push("")
lines.push("## Stream operators (Stream<Uint8Array> in, Stream of events out)")
lines.push("")
lines.push("| input | chunk | sluice events/s | sluice MB/s | effect Sse.decode MB/s | vs effect |")
lines.push("|---|---:|---:|---:|---:|---:|")
for (const input of inputs) {
  for (const size of chunkSizes) {
    const ours = find(input.name, size, "sluice SseParser.events (Stream)")
    const eff = find(input.name, size, "effect Sse.decode (Stream)")
    ratios.stream.push(ours.mbPerSec / eff.mbPerSec)
    lines.push(
      `| ${input.name} | ${size} | ${fmt(ours.eventsPerSec)} | ${ours.mbPerSec.toFixed(0)} | ${
        eff.mbPerSec.toFixed(0)
      } | ${(ours.mbPerSec / eff.mbPerSec).toFixed(2)}x |`
    )
  }
}
const geo = (xs: ReadonlyArray<number>) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length)
const range = (xs: ReadonlyArray<number>) =>
  `${geo(xs).toFixed(2)}x (range ${Math.min(...xs).toFixed(2)}x-${Math.max(...xs).toFixed(2)}x)`
lines.push("")
lines.push("## Summary (geometric mean of the MB/s ratios)")
lines.push("")
lines.push(`- sluice makeParser vs eventsource-parser: ${range(ratios.esp)}`)
lines.push(`- sluice makeParser vs effect Sse.makeParser: ${range(ratios.effect)}`)
lines.push(`- sluice SseParser.events vs effect Sse.decode (Stream): ${range(ratios.stream)}`)

const report = lines.join("\n") + "\n"
console.log(report)
const out = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "parser.md")
mkdirSync(dirname(out), { recursive: true })
writeFileSync(out, report)
console.log(`written to ${out}`)
