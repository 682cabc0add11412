/**
 * The writer's share of a broadcast, in process (no sockets): N connections
 * fed by a hub, bursts of B events, each subscriber's sink only counting
 * bytes. Compared with the floor of any design: one concatenation per burst
 * and one function call per subscriber (what the `raw` HTTP peer does before
 * its syscalls).
 *
 *   node_modules/.bin/node --conditions=@sluice/source bench/core/writer.ts [--subscribers=1000] [--burst=256]
 *
 * Prints microseconds per subscriber per burst and deliveries per second for
 * both, and their ratio. A development tool for the hot path; the HTTP
 * benchmark (bench/http) is where peers are compared.
 */
import { Hub } from "@sluice/core"
import { Effect } from "effect"

const args = process.argv.slice(2)
const option = (name: string, fallback: number) =>
  Number(args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback)
const subscribers = option("subscribers", 1000)
const burst = option("burst", 256)
const bursts = option("bursts", 200)
const payload = "x".repeat(90)

const floor = () => {
  const encoder = new TextEncoder()
  const sinks = Array.from({ length: subscribers }, () => ({ bytes: 0 }))
  const start = performance.now()
  for (let b = 0; b < bursts; b++) {
    let text = ""
    for (let k = 0; k < burst; k++) text += `id: ${b * burst + k}\ndata: ${payload}\n\n`
    const chunk = encoder.encode(text)
    for (const s of sinks) s.bytes += chunk.byteLength
  }
  return performance.now() - start
}

const sluice = Effect.scoped(Effect.gen(function*() {
  const hub = yield* Effect.orDie(Hub.make({ history: false }))
  let delivered = 0
  const sink = (chunk: Uint8Array) => {
    delivered += chunk.byteLength
    return Effect.void
  }
  for (let i = 0; i < subscribers; i++) {
    yield* Effect.orDie(Hub.subscribe(hub, { sink, capacity: burst * 2, heartbeat: false, writeTimeout: false }))
  }
  yield* Effect.yieldNow
  let expected = 0
  const start = performance.now()
  let publishing = 0
  for (let b = 0; b < bursts; b++) {
    const p0 = performance.now()
    for (let k = 0; k < burst; k++) {
      const r = Hub.publishUnsafe(hub, { id: String(b * burst + k), data: payload })
      if (r._tag === "Failure") return yield* Effect.die(r.failure)
    }
    publishing += performance.now() - p0
    // Let the writers run (each turn of the scheduler serves them) until the
    // burst has been written everywhere (at most 100 000 turns).
    for (let k = 0; k < burst; k++) {
      expected += (`id: ${b * burst + k}\ndata: ${payload}\n\n`).length * subscribers
    }
    for (let turn = 0; turn < 100_000; turn++) {
      if (delivered >= expected) break // `delivered` grows as the writers run between turns
      yield* Effect.yieldNow
    }
  }
  if (delivered !== expected) return yield* Effect.die(`delivered ${delivered} bytes, expected ${expected}`)
  const total = performance.now() - start
  console.log(
    `  of which publishing: ${((publishing * 1000) / (bursts * subscribers)).toFixed(2)} µs per subscriber-burst`
  )
  return total
}))

const main = async () => {
  floor()
  const f = floor()
  const s = await Effect.runPromise(sluice)
  const per = (ms: number) => (ms * 1000) / (bursts * subscribers)
  const rate = (ms: number) => (bursts * burst * subscribers) / (ms / 1000)
  console.log(`subscribers=${subscribers} burst=${burst} bursts=${bursts}`)
  console.log(`floor : ${per(f).toFixed(2)} µs per subscriber-burst, ${(rate(f) / 1e6).toFixed(1)} M deliveries/s`)
  console.log(
    `sluice: ${per(s).toFixed(2)} µs per subscriber-burst, ${(rate(s) / 1e6).toFixed(1)} M deliveries/s (${
      (s / f).toFixed(1)
    }x the floor's time)`
  )
}
main()
