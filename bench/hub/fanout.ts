/**
 * Fan-out benchmark: sluice's `Hub` against effect's `PubSub.sliding`, both
 * feeding the same subscribers (sluice connection actors with in-memory sinks).
 *
 * Run from the repository root:
 *
 *   node_modules/.bin/node --conditions=@sluice/source --expose-gc bench/hub/fanout.ts [--rounds=5] [--quick]
 *
 * What is measured, per subscriber count N (100 and 10 000):
 * - end to end: events are published in bursts of 32 (mailboxes hold 64),
 *   and after each burst the publisher waits (yielding) until every sink has
 *   received it; deliveries/s = events x N / elapsed, and bytes allocated per
 *   delivery (V8 heap: growth + everything the GCs freed during the run);
 * - the hub's publish alone (fan-out into the mailboxes, writers not yet run):
 *   nanoseconds and bytes allocated per delivery.
 *
 * Both variants encode each event once. The baseline is the natural effect
 * program: `PubSub.publish` of the encoded bytes, and per subscriber a fiber
 * that takes from its subscription and offers into its connection's mailbox.
 * Rounds alternate hub / baseline; figures are medians over rounds.
 */
import { Connection, Hub, SseEncoder } from "@sluice/core"
import { Effect, PubSub } from "effect"
import * as v8 from "node:v8"

const args = process.argv.slice(2)
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = args.includes("--quick")
const rounds = Number(option("rounds") ?? (quick ? 2 : 5))
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error("run with --expose-gc (allocation figures need a clean heap)")
  process.exit(2)
}

const payload = JSON.stringify({ symbol: "ACME", price: 123.45, volume: 1000, venue: "XNAS" })
const capacity = 64
const burst = 32

interface Sample {
  readonly deliveries: number
  readonly seconds: number
  readonly allocated: number
}

// Bytes allocated while `run` runs: what the heap grew by plus what every GC
// in between freed.
const profiled = <A>(run: Effect.Effect<A>): Effect.Effect<{ value: A; seconds: number; allocated: number }> =>
  Effect.suspend(() => {
    gc()
    const profiler = new v8.GCProfiler()
    const before = v8.getHeapStatistics().used_heap_size
    profiler.start()
    const start = process.hrtime.bigint()
    return Effect.map(run, (value) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9
      const after = v8.getHeapStatistics().used_heap_size
      const stats = profiler.stop()
      let freed = 0
      for (const s of stats?.statistics ?? []) {
        freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize
      }
      return { value, seconds, allocated: after - before + freed }
    })
  })

// A sink that only counts: no allocation of its own per write.
const countingSink = () => {
  const counter = { bytes: 0 }
  const sink = (chunk: Uint8Array) => {
    counter.bytes += chunk.byteLength
    return Effect.void
  }
  return { counter, sink }
}

const connectionOptions = { capacity, heartbeat: false, writeTimeout: false } as const

const waitUntil = (done: () => boolean) =>
  Effect.suspend(() => {
    let spins = 0
    return Effect.whileLoop({
      while: () => !done() && ++spins < 10_000_000,
      body: () => Effect.yieldNow,
      step: () => {}
    })
  })

const frameSize = (seq: number) =>
  SseEncoder.encodeUnsafe({ _tag: "Event", id: `b-${seq}`, event: "tick", data: payload })
    .byteLength

const hubRun = (n: number, events: number): Effect.Effect<Sample> =>
  Effect.scoped(Effect.gen(function*() {
    const { counter, sink } = countingSink()
    const hub = yield* Effect.orDie(Hub.make({ epoch: "b" }))
    for (let i = 0; i < n; i++) yield* Hub.subscribe(hub, { sink, ...connectionOptions }).pipe(Effect.orDie)
    let expected = 0
    const run = Effect.gen(function*() {
      for (let seq = 1; seq <= events;) {
        for (let k = 0; k < burst && seq <= events; k++, seq++) {
          yield* Effect.orDie(Hub.publish(hub, { event: "tick", data: payload }))
          expected += frameSize(seq) * n
        }
        yield* waitUntil(() => counter.bytes >= expected)
      }
    })
    const { allocated, seconds } = yield* profiled(run)
    if (counter.bytes !== expected) throw new Error(`hub: ${counter.bytes} bytes delivered, ${expected} expected`)
    return { deliveries: events * n, seconds, allocated }
  }))

const pubsubRun = (n: number, events: number): Effect.Effect<Sample> =>
  Effect.scoped(Effect.gen(function*() {
    const { counter, sink } = countingSink()
    const pubsub = yield* PubSub.sliding<Uint8Array>(capacity)
    for (let i = 0; i < n; i++) {
      const connection = yield* Connection.make({ sink, ...connectionOptions })
      const subscription = yield* PubSub.subscribe(pubsub)
      yield* Effect.forkScoped(Effect.gen(function*() {
        while (true) {
          const frames = yield* PubSub.takeAll(subscription)
          for (const frame of frames) {
            if (!connection.offerUnsafe(frame)) yield* connection.offer(frame)
          }
        }
      }))
    }
    yield* Effect.yieldNow
    let expected = 0
    const run = Effect.gen(function*() {
      for (let seq = 1; seq <= events;) {
        for (let k = 0; k < burst && seq <= events; k++, seq++) {
          const bytes = SseEncoder.encodeUnsafe({ _tag: "Event", id: `b-${seq}`, event: "tick", data: payload })
          yield* PubSub.publish(pubsub, bytes)
          expected += bytes.byteLength * n
        }
        yield* waitUntil(() => counter.bytes >= expected)
      }
    })
    const { allocated, seconds } = yield* profiled(run)
    if (counter.bytes !== expected) throw new Error(`pubsub: ${counter.bytes} bytes delivered, ${expected} expected`)
    return { deliveries: events * n, seconds, allocated }
  }))

const publishBurst = (hub: Hub.Hub, count: number) =>
  Effect.orDie(Effect.suspend(() => {
    let k = 0
    return Effect.whileLoop({
      while: () => k++ < count,
      body: () => Hub.publish(hub, { event: "tick", data: payload }),
      step: () => {}
    })
  }))

// The hub's own share: publishing a burst into mailboxes with room, writers
// not yet run (they run between bursts, outside the measurement). Per burst:
// wall time, and heap growth (bursts during which a GC ran are left out:
// their growth is not what they allocated). Medians over bursts.
const publishOnly = (n: number, events: number): Effect.Effect<{ ns: number; bytes: number }> =>
  Effect.scoped(Effect.gen(function*() {
    const { counter, sink } = countingSink()
    const hub = yield* Effect.orDie(Hub.make({ epoch: "b" }))
    for (let i = 0; i < n; i++) {
      yield* Hub.subscribe(hub, { sink, ...connectionOptions, capacity: burst * 2 }).pipe(Effect.orDie)
    }
    const ns: Array<number> = []
    const bytes: Array<number> = []
    let expected = 0
    for (let seq = 1; seq <= events;) {
      const count = Math.min(burst, events - seq + 1)
      const heapBefore = v8.getHeapStatistics().used_heap_size
      const start = process.hrtime.bigint()
      Effect.runSync(publishBurst(hub, count))
      const elapsed = Number(process.hrtime.bigint() - start)
      const grown = v8.getHeapStatistics().used_heap_size - heapBefore
      ns.push(elapsed / (count * n))
      if (grown >= 0) bytes.push(grown / (count * n))
      for (let k = 0; k < count; k++, seq++) expected += frameSize(seq) * n
      yield* waitUntil(() => counter.bytes >= expected)
    }
    return { ns: median(ns), bytes: median(bytes) }
  }))

const median = (xs: ReadonlyArray<number>) => {
  const sorted = xs.toSorted((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const rate = (s: Sample) => s.deliveries / s.seconds
const perDelivery = (s: Sample) => s.allocated / s.deliveries
const fmt = (x: number, digits = 0) => x.toLocaleString("en-US", { maximumFractionDigits: digits })

const main = Effect.gen(function*() {
  const sizes = [
    { n: 100, events: quick ? 4_000 : 20_000 },
    { n: 10_000, events: quick ? 64 : 320 }
  ]
  console.log(
    `node ${process.version}, ${rounds} rounds (medians), payload ${payload.length} B, mailbox ${capacity}, bursts of ${burst}`
  )
  console.log()
  console.log(
    "| subscribers | variant | deliveries/s | B allocated / delivery | hub / PubSub (throughput) | PubSub / hub (allocation) |"
  )
  console.log("|---:|---|---:|---:|---:|---:|")
  for (const { events, n } of sizes) {
    // Warm-up: JIT both paths once.
    yield* hubRun(n, Math.max(burst, events / 4))
    yield* pubsubRun(n, Math.max(burst, events / 4))
    const hub: Array<Sample> = []
    const base: Array<Sample> = []
    for (let r = 0; r < rounds; r++) {
      hub.push(yield* hubRun(n, events))
      base.push(yield* pubsubRun(n, events))
    }
    const hubRate = median(hub.map(rate))
    const baseRate = median(base.map(rate))
    const hubAlloc = median(hub.map(perDelivery))
    const baseAlloc = median(base.map(perDelivery))
    console.log(
      `| ${fmt(n)} | Hub | ${fmt(hubRate)} | ${fmt(hubAlloc, 1)} | ${fmt(hubRate / baseRate, 2)}x | ${
        fmt(baseAlloc / hubAlloc, 2)
      }x |`
    )
    console.log(`| ${fmt(n)} | PubSub.sliding + forwarder fibers | ${fmt(baseRate)} | ${fmt(baseAlloc, 1)} | 1x | 1x |`)
  }
  console.log()
  console.log("Hub publish alone (fan-out into mailboxes with room; writers excluded):")
  console.log()
  console.log("| subscribers | ns / delivery | B allocated / delivery |")
  console.log("|---:|---:|---:|")
  for (const { events, n } of sizes) {
    yield* publishOnly(n, Math.max(burst, events / 4))
    const samples: Array<{ ns: number; bytes: number }> = []
    for (let r = 0; r < rounds; r++) samples.push(yield* publishOnly(n, events))
    console.log(
      `| ${fmt(n)} | ${fmt(median(samples.map((s) => s.ns)), 1)} | ${fmt(median(samples.map((s) => s.bytes)), 2)} |`
    )
  }
})

Effect.runPromise(main).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
