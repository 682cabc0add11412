/**
 * The scenarios, their sizes (quick and full) and how each one is run against one peer.
 *
 * A run starts a fresh server process for the peer, drives it and the load clients, and
 * returns a flat record of numbers. Every wait is bounded; a run that cannot finish throws.
 */
import { Histogram } from "./Histogram.ts"
import type { Published, Received, ServerStats } from "./Ipc.ts"
import { nowUs } from "./Payload.ts"
import { type ClientChild, type Placement, type ServerChild, startClients, startServer } from "./Processes.ts"

/** One run's figures, by metric key. */
export type Metrics = Record<string, number>

/** How a metric is shown and compared. */
export interface MetricSpec {
  readonly key: string
  readonly label: string
  readonly unit: string
  readonly better: "higher" | "lower"
  /** A correctness count that should be 0 (shown apart, not as a ratio). */
  readonly check?: true
}

export interface Settings {
  readonly mode: "quick" | "full"
  readonly rounds: number
  /** Size of each event's data. */
  readonly payloadBytes: number
  /** Most events published in one go before yielding to the event loop. */
  readonly burst: number
  /** Publishing in the saturated scenarios stops at `events` or after `timeCapMs`. */
  readonly fanout: ReadonlyArray<{ readonly clients: number; readonly events: number; readonly timeCapMs: number }>
  readonly paced: { readonly clients: number; readonly perSecond: number; readonly events: number }
  readonly single: { readonly events: number; readonly timeCapMs: number }
  /** New cycles stop after `cycles` or `timeCapMs`. */
  readonly churn: { readonly cycles: number; readonly concurrency: number; readonly timeCapMs: number }
  /** Connections held open, measured at each step (cumulative). */
  readonly idle: { readonly steps: ReadonlyArray<number> }
  /**
   * As many SSE connections as one process can hold (the target, or what the open-file limit
   * allows), heartbeats on, held `holdMs` (a heartbeat round), then one broadcast.
   */
  readonly hold: { readonly connections: number; readonly holdMs: number }
  /** `connections` resuming clients, the server killed and restarted on the same port. */
  readonly storm: { readonly connections: number }
  /** One event per event-loop turn, up to `perSecond`, to `clients` subscribers. */
  readonly trickle: {
    readonly clients: number
    readonly perSecond: number
    readonly events: number
    readonly timeCapMs: number
  }
  /** Before each run, wait (at most `quietWaitMs`) until other processes use less than this many cores. */
  readonly quietBelowCores: number
  readonly quietWaitMs: number
  /** A run during which other processes used more than this many cores is tried again, `retries` times at most. */
  readonly retryAboveCores: number
  readonly retries: number
}

/** `pnpm bench`: one round of everything, small counts, short caps (about 2 minutes). */
export const quick: Settings = {
  mode: "quick",
  rounds: 1,
  payloadBytes: 100,
  burst: 256,
  // At 1 000 clients the slowest peers need about a second to drain their first window.
  fanout: [{ clients: 100, events: 5_000, timeCapMs: 1_000 }, { clients: 1_000, events: 2_000, timeCapMs: 2_000 }],
  paced: { clients: 1_000, perSecond: 20, events: 20 },
  single: { events: 500_000, timeCapMs: 1_000 },
  churn: { cycles: 1_000, concurrency: 32, timeCapMs: 1_500 },
  idle: { steps: [500, 2_000] },
  hold: { connections: 5_000, holdMs: 1_000 },
  storm: { connections: 1_000 },
  trickle: { clients: 100, perSecond: 1_000, events: 1_500, timeCapMs: 1_500 },
  quietBelowCores: 0.25,
  quietWaitMs: 500,
  retryAboveCores: 0.5,
  retries: 0
}

/** `pnpm bench --full`: the sizes of the issue, 3 rounds. */
export const full: Settings = {
  mode: "full",
  rounds: 3,
  payloadBytes: 100,
  burst: 256,
  fanout: [{ clients: 100, events: 20_000, timeCapMs: 10_000 }, { clients: 1_000, events: 20_000, timeCapMs: 10_000 }],
  paced: { clients: 1_000, perSecond: 20, events: 200 },
  single: { events: 2_000_000, timeCapMs: 5_000 },
  churn: { cycles: 20_000, concurrency: 32, timeCapMs: 30_000 },
  idle: { steps: [1_000, 5_000, 10_000] },
  hold: { connections: 100_000, holdMs: 16_000 },
  storm: { connections: 10_000 },
  trickle: { clients: 500, perSecond: 2_000, events: 20_000, timeCapMs: 10_000 },
  quietBelowCores: 0.2,
  quietWaitMs: 3_000,
  retryAboveCores: 0.5,
  retries: 1
}

/** What a run needs. */
export interface RunContext {
  readonly peer: string
  readonly where: Placement
  readonly clients: ReadonlyArray<ClientChild>
  readonly settings: Settings
}

export interface Scenario {
  readonly name: string
  readonly title: string
  /** What it measures, one or two sentences for the README and the report. */
  readonly measures: string
  readonly metrics: ReadonlyArray<MetricSpec>
  /** The metric plotted and put in the summary. */
  readonly headline: ReadonlyArray<string>
  /** The only peers it runs (the others are left out: the scenario compares these with raw). */
  readonly peers?: ReadonlyArray<string>
  readonly run: (context: RunContext) => Promise<Metrics>
}

const MiB = 1024 * 1024
const KiB = 1024

/** Splits `total` as evenly as possible over `parts`. */
const split = (total: number, parts: number): ReadonlyArray<number> =>
  Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0))

const withServer = async <A>(context: RunContext, body: (server: ServerChild, port: number) => Promise<A>) => {
  const { child, port } = await startServer(context.peer, context.where)
  try {
    return await body(child, port)
  } finally {
    await Promise.all(context.clients.map((client) => client.call({ type: "closeAll" }, 15_000).catch(() => null)))
    await child.stop()
  }
}

const stats = (server: ServerChild, gc: boolean): Promise<ServerStats> => server.call({ type: "stats", gc }, 30_000)

/** Opens `count` SSE connections spread over the clients and waits until the peer counts them. */
const openAll = async (context: RunContext, server: ServerChild, port: number, count: number, expect = count) => {
  const shares = split(count, context.clients.length)
  const timeoutMs = 30_000 + count * 10
  const opened = await Promise.all(
    context.clients.map((client, i) =>
      client.call({ type: "open", port, count: shares[i]!, concurrency: 128, timeoutMs }, timeoutMs + 5_000)
    )
  )
  const failed = opened.reduce((sum, o) => sum + o.failed, 0)
  if (failed > 0) throw new Error(`${failed} of ${count} connections failed to open`)
  const waited = await server.call(
    { type: "waitSubscribers", atLeast: expect, atMost: Number.MAX_SAFE_INTEGER, timeoutMs: 30_000 },
    35_000
  )
  if (!waited.ok) throw new Error(`peer counts ${waited.subscribers} subscribers, expected ${expect}`)
  return shares
}

/** Starts tracking on the clients that hold connections and relays their progress to the publisher. */
const track = async (
  context: RunContext,
  server: ServerChild,
  shares: ReadonlyArray<number>,
  warmup: { readonly fromSeq: number; readonly fromUs: number | null } = { fromSeq: 0, fromUs: null }
) => {
  const active = context.clients.filter((_, i) => shares[i]! > 0)
  const mins = active.map(() => -1)
  let sent = -1
  const unlisten = active.map((client, i) =>
    client.onMessage((message) => {
      if (message.type !== "progress") return
      mins[i] = message.minSeq
      const min = Math.min(...mins)
      if (min > sent) {
        sent = min
        server.post({ type: "ack", seq: min })
      }
    })
  )
  await Promise.all(active.map((client) => client.call({ type: "track", progressEveryMs: 2, ...warmup }, 10_000)))
  return {
    finish: async (published: Published, timeoutMs: number) => {
      const received = await Promise.all(
        active.map((client) =>
          client.call({ type: "finish", lastSeq: published.published - 1, timeoutMs }, timeoutMs + 10_000)
        )
      )
      for (const off of unlisten) off()
      return received
    }
  }
}

interface Delivery {
  /** Measured events (warm-up excluded) received by all clients. */
  readonly events: number
  /** All events received by all clients, warm-up included. */
  readonly allEvents: number
  readonly bytes: number
  /** From the first measured event's publish to the last receive. */
  readonly elapsedS: number
  readonly lastUs: number
  readonly latency: Histogram
  readonly seqErrors: number
  readonly incomplete: number
  readonly clientCpuS: number
}

const sum = (received: ReadonlyArray<Received>, key: "events" | "allEvents" | "bytes" | "seqErrors" | "cpuUs") =>
  received.reduce((total, r) => total + r[key], 0)

/** Throughput is measured from the publish time of the first measured event to the last receive. */
const delivery = (received: ReadonlyArray<Received>): Delivery => {
  const latency = new Histogram()
  for (const r of received) latency.merge(r.latency)
  const lastUs = Math.max(...received.map((r) => r.lastUs))
  const firstUs = Math.min(...received.map((r) => r.firstUs))
  return {
    events: sum(received, "events"),
    allEvents: sum(received, "allEvents"),
    bytes: sum(received, "bytes"),
    elapsedS: Number.isFinite(firstUs) && lastUs > firstUs ? (lastUs - firstUs) / 1e6 : Number.NaN,
    lastUs,
    latency,
    seqErrors: sum(received, "seqErrors"),
    incomplete: received.reduce((total, r) => total + r.incomplete + r.lost, 0),
    clientCpuS: sum(received, "cpuUs") / 1e6
  }
}

const cpuS = (before: ServerStats, after: ServerStats) =>
  (after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs) / 1e6

/**
 * How far the publisher may run ahead of the slowest client: 100 ms of that client's delivery
 * rate (measured from its acks), at least 16 and at most 100 000 events. Enough to keep every
 * peer busy (acks come back within a few ms), little enough that a slow peer drains it fast.
 */
const ahead = { aheadMs: 100, minWindow: 16, maxWindow: 100_000 } as const

/** Connect `clients`, publish as fast as the slowest allows, measure. */
const saturate = async (context: RunContext, clients: number, events: number, timeCapMs: number) =>
  withServer(context, async (server, port) => {
    const base = await stats(server, true)
    const shares = await openAll(context, server, port, clients)
    // The first tenth of the events or of the time cap, whichever ends first, warms up the peer,
    // the clients and the window: not measured. (The runner shares the monotonic clock.)
    const tracker = await track(context, server, shares, {
      fromSeq: Math.floor(events / 10),
      fromUs: nowUs() + timeCapMs * 100
    })
    const before = await stats(server, false)
    const published = await server.call({
      type: "burst",
      events,
      burst: context.settings.burst,
      ...ahead,
      timeCapMs,
      payloadBytes: context.settings.payloadBytes
    }, timeCapMs + 30_000)
    const received = await tracker.finish(published, 30_000)
    const after = await stats(server, false)
    const settled = await stats(server, true)
    const d = delivery(received)
    const cpu = cpuS(before, after)
    return { base, settled, after, published, d, cpu }
  })

const fanout = ({ clients, events, timeCapMs }: Settings["fanout"][number]): Scenario => ({
  name: `fanout-${clients}`,
  title: `Fan-out, ${clients} clients`,
  measures: `${clients} clients subscribed; ${events} events of ~100 bytes (or ${timeCapMs / 1000} s of publishing) ` +
    `published as fast as the slowest client takes them (about ${ahead.aheadMs} ms of its delivery rate ahead). ` +
    "The first tenth of the events or of the time, whichever ends first, is a warm-up. Deliveries/s and latency under saturation (mostly the time " +
    "to drain that window) of the others; server CPU per million deliveries (all of them); server memory per " +
    "connection after the run (RSS and heap after GC, minus the server's own before any client connected).",
  metrics: [
    { key: "deliveriesPerSec", label: "deliveries/s", unit: "/s", better: "higher" },
    { key: "p50Ms", label: "p50", unit: "ms", better: "lower" },
    { key: "p99Ms", label: "p99", unit: "ms", better: "lower" },
    { key: "cpuSecPerMDeliveries", label: "server CPU per 1M deliveries", unit: "s", better: "lower" },
    { key: "serverCoreUse", label: "server core use", unit: "", better: "lower" },
    { key: "rssPerConnKiB", label: "RSS/conn", unit: "KiB", better: "lower" },
    { key: "heapPerConnKiB", label: "heap/conn", unit: "KiB", better: "lower" },
    { key: "peakRssMiB", label: "peak RSS", unit: "MiB", better: "lower" },
    { key: "clientCoreUse", label: "client core use", unit: "", better: "lower" },
    { key: "published", label: "events published", unit: "", better: "higher" },
    { key: "seqErrors", label: "seq errors", unit: "", better: "lower", check: true },
    { key: "incomplete", label: "incomplete clients", unit: "", better: "lower", check: true }
  ],
  headline: ["deliveriesPerSec", "p99Ms"],
  run: async (context) => {
    const { base, settled, after, published, d, cpu } = await saturate(context, clients, events, timeCapMs)
    return {
      deliveriesPerSec: d.events / d.elapsedS,
      p50Ms: d.latency.quantile(0.5) / 1000,
      p99Ms: d.latency.quantile(0.99) / 1000,
      cpuSecPerMDeliveries: cpu / (d.allEvents / 1e6),
      serverCoreUse: cpu / ((d.lastUs - published.startUs) / 1e6),
      rssPerConnKiB: (settled.rssBytes - base.rssBytes) / clients / KiB,
      heapPerConnKiB: (settled.heapUsedBytes - base.heapUsedBytes) / clients / KiB,
      peakRssMiB: after.maxRssBytes / MiB,
      clientCoreUse: d.clientCpuS / ((d.lastUs - published.startUs) / 1e6),
      published: published.published,
      seqErrors: d.seqErrors,
      incomplete: d.incomplete
    }
  }
})

/** Events published (and not measured) before the paced ones: half a second's worth. */
const warmup = (perSecond: number) => Math.ceil(perSecond / 2)

const paced = ({ clients, perSecond, events }: Settings["paced"]): Scenario => ({
  name: `paced-${clients}`,
  title: `Paced fan-out, ${clients} clients at ${perSecond} events/s`,
  measures: `${clients} clients, ${perSecond} events/s for ${events / perSecond} s (well below saturation), after ` +
    `a warm-up of ${warmup(perSecond)} events: publish-to-receive latency p50, p99 and max.`,
  metrics: [
    { key: "p50Ms", label: "p50", unit: "ms", better: "lower" },
    { key: "p99Ms", label: "p99", unit: "ms", better: "lower" },
    { key: "maxMs", label: "max", unit: "ms", better: "lower" },
    { key: "deliveries", label: "deliveries", unit: "", better: "higher" },
    { key: "seqErrors", label: "seq errors", unit: "", better: "lower", check: true },
    { key: "incomplete", label: "incomplete clients", unit: "", better: "lower", check: true }
  ],
  headline: ["p99Ms"],
  run: (context) =>
    withServer(context, async (server, port) => {
      const shares = await openAll(context, server, port, clients)
      // The first events find cold code in the peer and the clients: they are not counted.
      const tracker = await track(context, server, shares, { fromSeq: warmup(perSecond), fromUs: null })
      const published = await server.call(
        { type: "paced", events: warmup(perSecond) + events, perSecond, payloadBytes: context.settings.payloadBytes },
        ((warmup(perSecond) + events) / perSecond) * 1000 + 30_000
      )
      const d = delivery(await tracker.finish(published, 30_000))
      return {
        p50Ms: d.latency.quantile(0.5) / 1000,
        p99Ms: d.latency.quantile(0.99) / 1000,
        maxMs: d.latency.max / 1000,
        deliveries: d.events,
        seqErrors: d.seqErrors,
        incomplete: d.incomplete
      }
    })
})

const single = ({ events, timeCapMs }: Settings["single"]): Scenario => ({
  name: "single-stream",
  title: "Single stream",
  measures: `One client, ${events} events of ~100 bytes (or ${timeCapMs / 1000} s of publishing) published as ` +
    `fast as it takes them (about ${ahead.aheadMs} ms ahead), the first tenth a warm-up: events/s and MiB/s ` +
    "of SSE body received.",
  metrics: [
    { key: "eventsPerSec", label: "events/s", unit: "/s", better: "higher" },
    { key: "mibPerSec", label: "MiB/s", unit: "MiB/s", better: "higher" },
    { key: "p50Ms", label: "p50", unit: "ms", better: "lower" },
    { key: "p99Ms", label: "p99", unit: "ms", better: "lower" },
    { key: "cpuSecPerMDeliveries", label: "server CPU per 1M events", unit: "s", better: "lower" },
    { key: "published", label: "events published", unit: "", better: "higher" },
    { key: "seqErrors", label: "seq errors", unit: "", better: "lower", check: true },
    { key: "incomplete", label: "incomplete clients", unit: "", better: "lower", check: true }
  ],
  headline: ["eventsPerSec"],
  run: async (context) => {
    const { published, d, cpu } = await saturate(context, 1, events, timeCapMs)
    return {
      eventsPerSec: d.events / d.elapsedS,
      // Body bytes are counted per chunk, warm-up included: scaled to the measured events.
      mibPerSec: (d.events / d.elapsedS) * (d.bytes / d.allEvents) / MiB,
      p50Ms: d.latency.quantile(0.5) / 1000,
      p99Ms: d.latency.quantile(0.99) / 1000,
      cpuSecPerMDeliveries: cpu / (d.allEvents / 1e6),
      published: published.published,
      seqErrors: d.seqErrors,
      incomplete: d.incomplete
    }
  }
})

const churn = ({ cycles, concurrency, timeCapMs }: Settings["churn"]): Scenario => ({
  name: "churn",
  title: "Disconnect churn",
  measures: `Connect, read 1 to 3 events, destroy the socket; ${cycles} times (or for ${timeCapMs / 1000} s), ` +
    `${concurrency} at a time, while the peer publishes one event per millisecond. Connections/s, and the ` +
    "server's RSS, heap, open handles and subscribers before and after (after: once the peer counts no " +
    "subscriber, at most 10 s later, after GC); heap growth is what the cycles left on the heap " +
    "(`node bench/memory/run.ts churn` shows it per object kind).",
  metrics: [
    { key: "connPerSec", label: "connections/s", unit: "/s", better: "higher" },
    { key: "serverCoreUse", label: "server core use", unit: "", better: "lower" },
    { key: "clientCoreUse", label: "client core use", unit: "", better: "lower" },
    { key: "rssBeforeMiB", label: "RSS before", unit: "MiB", better: "lower" },
    { key: "rssAfterMiB", label: "RSS after", unit: "MiB", better: "lower" },
    { key: "heapBeforeMiB", label: "heap before", unit: "MiB", better: "lower" },
    { key: "heapAfterMiB", label: "heap after", unit: "MiB", better: "lower" },
    { key: "heapGrowthKiB", label: "heap growth", unit: "KiB", better: "lower" },
    { key: "handlesBefore", label: "handles before", unit: "", better: "lower" },
    { key: "handlesAfter", label: "handles after", unit: "", better: "lower" },
    { key: "subscribersBefore", label: "subscribers before", unit: "", better: "lower" },
    { key: "subscribersAfter", label: "subscribers after", unit: "", better: "lower", check: true },
    { key: "handlesLeaked", label: "handles leaked", unit: "", better: "lower", check: true },
    { key: "settleMs", label: "settle time", unit: "ms", better: "lower" },
    { key: "cycles", label: "cycles", unit: "", better: "higher" },
    { key: "failedCycles", label: "failed cycles", unit: "", better: "lower", check: true }
  ],
  headline: ["connPerSec"],
  run: (context) =>
    withServer(context, async (server, port) => {
      await server.call({ type: "ticker", intervalMs: 1, payloadBytes: context.settings.payloadBytes }, 10_000)
      const before = await stats(server, true)
      const cpuBefore = await stats(server, false)
      const shares = split(cycles, context.clients.length)
      const timeoutMs = timeCapMs + 20_000
      const churned = await Promise.all(
        context.clients.map((client, i) =>
          client.call({
            type: "churn",
            port,
            cycles: shares[i]!,
            concurrency: Math.max(1, Math.round(concurrency / context.clients.length)),
            timeCapMs,
            timeoutMs
          }, timeoutMs + 10_000)
        )
      )
      const cpuAfter = await stats(server, false)
      const settle = await server.call(
        { type: "waitSubscribers", atLeast: 0, atMost: before.subscribers, timeoutMs: 10_000 },
        15_000
      )
      const after = await stats(server, true)
      await server.call({ type: "ticker", intervalMs: 0, payloadBytes: 0 }, 10_000)
      const completed = churned.reduce((total, c) => total + c.completed, 0)
      const elapsedS = Math.max(...churned.map((c) => c.elapsedUs)) / 1e6
      return {
        connPerSec: completed / elapsedS,
        serverCoreUse: cpuS(cpuBefore, cpuAfter) / elapsedS,
        clientCoreUse: churned.reduce((total, c) => total + c.cpuUs, 0) / 1e6 / elapsedS,
        rssBeforeMiB: before.rssBytes / MiB,
        rssAfterMiB: after.rssBytes / MiB,
        heapBeforeMiB: before.heapUsedBytes / MiB,
        heapAfterMiB: after.heapUsedBytes / MiB,
        heapGrowthKiB: (after.heapUsedBytes - before.heapUsedBytes) / KiB,
        handlesBefore: before.handles,
        handlesAfter: after.handles,
        subscribersBefore: before.subscribers,
        subscribersAfter: after.subscribers,
        handlesLeaked: Math.max(0, after.handles - before.handles),
        settleMs: settle.ms,
        cycles: completed,
        failedCycles: churned.reduce((total, c) => total + c.failed, 0)
      }
    })
})

const idle = (steps: ReadonlyArray<number>): Scenario => {
  const most = steps[steps.length - 1]!
  const at = (n: number) => `rssPerConnKiB${n}`
  return {
    name: "idle",
    title: `Idle connections`,
    measures: `SSE connections held open, nothing published, opened in steps (${steps.join(", ")}): server RSS ` +
      "and heap (after GC) per connection at each step, minus the server's own with no connection; the " +
      "server's RSS with none and with all of them.",
    metrics: [
      { key: "rssPerConnKiB", label: `RSS/conn (${most})`, unit: "KiB", better: "lower" },
      { key: "heapPerConnKiB", label: `heap/conn (${most})`, unit: "KiB", better: "lower" },
      ...steps.slice(0, -1).map((n): MetricSpec => ({
        key: at(n),
        label: `RSS/conn (${n})`,
        unit: "KiB",
        better: "lower"
      })),
      ...steps.slice(0, -1).map((n): MetricSpec => ({
        key: `heapPerConnKiB${n}`,
        label: `heap/conn (${n})`,
        unit: "KiB",
        better: "lower"
      })),
      { key: "baseRssMiB", label: "RSS, no connection", unit: "MiB", better: "lower" },
      { key: "rssMiB", label: "RSS, all connected", unit: "MiB", better: "lower" },
      { key: "handles", label: "handles", unit: "", better: "lower" },
      { key: "connections", label: "connections", unit: "", better: "higher" }
    ],
    headline: ["rssPerConnKiB"],
    run: (context) =>
      withServer(context, async (server, port) => {
        const base = await stats(server, true)
        const out: Metrics = {}
        let open = 0
        let held = base
        for (const n of steps) {
          await openAll(context, server, port, n - open, n)
          open = n
          held = await stats(server, true)
          out[n === most ? "rssPerConnKiB" : at(n)] = (held.rssBytes - base.rssBytes) / n / KiB
          out[n === most ? "heapPerConnKiB" : `heapPerConnKiB${n}`] = (held.heapUsedBytes - base.heapUsedBytes) / n /
            KiB
        }
        return {
          ...out,
          baseRssMiB: base.rssBytes / MiB,
          rssMiB: held.rssBytes / MiB,
          handles: held.handles,
          connections: most
        }
      })
  }
}

/** Source addresses for the connections of the big scenarios (loopback: all of 127/8 is local). */
const sourceAddresses = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`)

const hold = ({ connections, holdMs }: Settings["hold"], fit: number): Scenario => {
  const count = Math.min(connections, fit)
  return {
    name: "hold",
    title: `${count} idle connections, heartbeats on`,
    measures: `${count} SSE connections to one server process (from ${sourceAddresses.length} loopback source ` +
      `addresses)${count < connections ? `, ${connections} asked: the open-file limit allows ${fit}` : ""}; ` +
      `held ${holdMs / 1000} s with the peer's heartbeats on (sluice's default 15 s; raw's 15 s comment), then one ` +
      "event broadcast to all: time to connect all of them, server RSS and heap per connection (after GC), " +
      "and connections that did not get the broadcast (a check).",
    peers: ["raw", "sluice"],
    metrics: [
      { key: "rssPerConnKiB", label: "RSS/conn", unit: "KiB", better: "lower" },
      { key: "heapPerConnKiB", label: "heap/conn", unit: "KiB", better: "lower" },
      { key: "rssMiB", label: "RSS, all held", unit: "MiB", better: "lower" },
      { key: "connectS", label: "time to connect all", unit: "s", better: "lower" },
      { key: "connectPerSec", label: "connects/s", unit: "/s", better: "higher" },
      { key: "broadcastMs", label: "broadcast to all", unit: "ms", better: "lower" },
      { key: "connections", label: "connections", unit: "", better: "higher" },
      { key: "missed", label: "missed the broadcast", unit: "", better: "lower", check: true }
    ],
    headline: ["rssPerConnKiB"],
    run: (context) =>
      withServer(context, async (server, port) => {
        // Every client process holds at most what its open-file limit allows.
        const perClient = Math.max(1, fit)
        const extra = await startClients(Math.ceil(count / perClient) - 1, context.where)
        try {
          const clients = [...context.clients, ...extra]
          const base = await stats(server, true)
          const shares = split(count, clients.length)
          const t0 = performance.now()
          const timeoutMs = 60_000 + count * 5
          const opened = await Promise.all(clients.map((client, i) =>
            client.call({
              type: "open",
              port,
              count: shares[i]!,
              concurrency: 256,
              timeoutMs,
              localAddresses: sourceAddresses
            }, timeoutMs + 5_000)
          ))
          const failed = opened.reduce((total, o) => total + o.failed, 0)
          if (failed > 0) throw new Error(`${failed} of ${count} connections failed to open`)
          const waited = await server.call(
            { type: "waitSubscribers", atLeast: count, atMost: Number.MAX_SAFE_INTEGER, timeoutMs: 60_000 },
            65_000
          )
          if (!waited.ok) throw new Error(`peer counts ${waited.subscribers} subscribers, expected ${count}`)
          const connectS = (performance.now() - t0) / 1000
          await new Promise((resolve) => setTimeout(resolve, holdMs))
          const held = await stats(server, true)
          // One broadcast (the server's first event): every connection should get it.
          const active = clients.filter((_, i) => shares[i]! > 0)
          await Promise.all(
            active.map((client) =>
              client.call({ type: "track", progressEveryMs: 50, fromSeq: 0, fromUs: null }, 10_000)
            )
          )
          const b0 = performance.now()
          const published = await server.call({
            type: "burst",
            events: 1,
            burst: 1,
            aheadMs: 100,
            minWindow: 1,
            maxWindow: 1,
            timeCapMs: 5_000,
            payloadBytes: context.settings.payloadBytes
          }, 10_000)
          const received = await Promise.all(
            active.map((client) =>
              client.call({ type: "finish", lastSeq: published.published - 1, timeoutMs: 30_000 }, 40_000)
            )
          )
          const broadcastMs = performance.now() - b0
          return {
            rssPerConnKiB: (held.rssBytes - base.rssBytes) / count / KiB,
            heapPerConnKiB: (held.heapUsedBytes - base.heapUsedBytes) / count / KiB,
            rssMiB: held.rssBytes / MiB,
            connectS,
            connectPerSec: count / connectS,
            broadcastMs,
            connections: count,
            missed: received.reduce((total, r) => total + r.incomplete + r.lost, 0)
          }
        } finally {
          await Promise.all(extra.map((client) => client.call({ type: "closeAll" }, 30_000).catch(() => null)))
          await Promise.all(extra.map((client) => client.stop()))
        }
      })
  }
}

const storm = ({ connections }: Settings["storm"]): Scenario => ({
  name: "storm",
  title: `Reconnect storm, ${connections} clients`,
  measures: `${connections} clients connected and receiving (an event every 100 ms); the server is killed and ` +
    "started again on the same port, and every client comes back at once, resuming with `Last-Event-ID` " +
    "(refusals and failed connects retried with a backoff: 50 ms doubling to 800 ms, plus up to as much again at random). Time from the new server listening until all " +
    "are back (a 200) and until all received an event published after the restart; the new server's peak " +
    "RSS during the storm.",
  peers: ["raw", "sluice"],
  metrics: [
    { key: "backMs", label: "all back", unit: "ms", better: "lower" },
    { key: "liveMs", label: "all receiving", unit: "ms", better: "lower" },
    { key: "peakRssMiB", label: "peak RSS in the storm", unit: "MiB", better: "lower" },
    { key: "rssAfterMiB", label: "RSS after", unit: "MiB", better: "lower" },
    { key: "reconnects", label: "reconnections", unit: "", better: "lower" },
    { key: "withoutId", label: "reconnected without an id", unit: "", better: "lower", check: true },
    { key: "notBack", label: "not back", unit: "", better: "lower", check: true }
  ],
  headline: ["liveMs"],
  run: async (context) => {
    const client = context.clients[0]!
    const first = await startServer(context.peer, context.where)
    let second: Awaited<ReturnType<typeof startServer>> | undefined
    try {
      const opened = await client.call({
        type: "resilient",
        port: first.port,
        count: connections,
        concurrency: 256,
        timeoutMs: 60_000,
        localAddresses: sourceAddresses
      }, 65_000)
      if (opened.failed > 0) throw new Error(`${opened.failed} of ${connections} connections failed to open`)
      await first.child.call({ type: "ticker", intervalMs: 100, payloadBytes: context.settings.payloadBytes }, 10_000)
      // Everyone has an event id to resume from.
      await new Promise((resolve) => setTimeout(resolve, 500))
      const killedUs = nowUs()
      await first.child.kill()
      second = await startServer(context.peer, context.where, first.port)
      const readyUs = nowUs()
      await second.child.call({ type: "ticker", intervalMs: 100, payloadBytes: context.settings.payloadBytes }, 10_000)
      const result = await client.call({ type: "storm", afterUs: killedUs, timeoutMs: 60_000 }, 65_000)
      const after = await stats(second.child, false)
      return {
        backMs: (result.lastBackUs - readyUs) / 1000,
        liveMs: (result.lastEventUs - readyUs) / 1000,
        peakRssMiB: after.maxRssBytes / MiB,
        rssAfterMiB: after.rssBytes / MiB,
        reconnects: result.withId + result.withoutId,
        withoutId: result.withoutId,
        notBack: result.connections - Math.min(result.back, result.live)
      }
    } finally {
      await client.call({ type: "stopResilient" }, 10_000).catch(() => null)
      await first.child.kill()
      await second?.child.stop()
    }
  }
})

const trickle = ({ clients, events, perSecond, timeCapMs }: Settings["trickle"]): Scenario => ({
  name: "trickle",
  title: `Trickle, ${clients} subscribers`,
  measures: `${clients} subscribers; one event per event-loop turn (as one event per incoming request would ` +
    `be published), up to ${perSecond} events/s, ${events} events or ${timeCapMs / 1000} s. Deliveries/s and ` +
    "publish-to-receive latency. `raw` writes each event to every client in its own turn; `raw-coalesced` " +
    "coalesces like a sluice hub does by default (events within 2 ms of the last write go out together).",
  peers: ["raw", "raw-coalesced", "sluice"],
  metrics: [
    { key: "deliveriesPerSec", label: "deliveries/s", unit: "/s", better: "higher" },
    { key: "eventsPerSec", label: "events/s", unit: "/s", better: "higher" },
    { key: "p50Ms", label: "p50", unit: "ms", better: "lower" },
    { key: "p99Ms", label: "p99", unit: "ms", better: "lower" },
    { key: "serverCoreUse", label: "server core use", unit: "", better: "lower" },
    { key: "seqErrors", label: "seq errors", unit: "", better: "lower", check: true },
    { key: "incomplete", label: "incomplete clients", unit: "", better: "lower", check: true }
  ],
  headline: ["deliveriesPerSec", "p99Ms"],
  run: (context) =>
    withServer(context, async (server, port) => {
      const shares = await openAll(context, server, port, clients)
      const tracker = await track(context, server, shares, {
        fromSeq: Math.floor(events / 10),
        fromUs: nowUs() + timeCapMs * 100
      })
      const before = await stats(server, false)
      const published = await server.call(
        { type: "trickle", events, perSecond, timeCapMs, payloadBytes: context.settings.payloadBytes },
        timeCapMs + 30_000
      )
      const after = await stats(server, false)
      const d = delivery(await tracker.finish(published, 30_000))
      const elapsedS = (published.endUs - published.startUs) / 1e6
      return {
        deliveriesPerSec: d.events / d.elapsedS,
        eventsPerSec: d.events / clients / d.elapsedS,
        p50Ms: d.latency.quantile(0.5) / 1000,
        p99Ms: d.latency.quantile(0.99) / 1000,
        serverCoreUse: cpuS(before, after) / elapsedS,
        seqErrors: d.seqErrors,
        incomplete: d.incomplete
      }
    })
})

/**
 * The scenarios of a run, in order; `fit` is how many connections one process may hold (the
 * open-file limit): the idle steps and the held connections are lowered to it.
 */
export const scenarios = (settings: Settings, fit: number): ReadonlyArray<Scenario> => [
  ...settings.fanout.map(fanout),
  paced(settings.paced),
  single(settings.single),
  trickle(settings.trickle),
  churn(settings.churn),
  idle(settings.idle.steps.map((n) => Math.min(n, fit))),
  hold(settings.hold, fit),
  storm(settings.storm)
]
