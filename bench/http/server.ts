/**
 * The server host: one process per peer and run. `node server.ts <peer>` loads
 * `peers/<peer>.ts`, starts it, and then publishes and measures on the runner's commands (see
 * `Ipc.ts`). Publishing, memory, CPU and handle figures are taken here, the same way for
 * every peer. Exits when the runner goes away.
 */
import { writeHeapSnapshot } from "node:v8"
import type { ServerCommand, ServerMessage, ServerResults, ServerStats } from "./Ipc.ts"
import { makePayload, nowUs } from "./Payload.ts"
import type { Peer, PeerServer } from "./Peer.ts"

const send = (message: ServerMessage): void => {
  process.send?.(message)
}

const name = process.argv[2] ?? ""
if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`server.ts: bad peer name ${JSON.stringify(name)}`)
const { peer } = (await import(new URL(`./peers/${name}.ts`, import.meta.url).href)) as { peer: Peer }
const port = process.argv[3] === undefined ? undefined : Number(process.argv[3])
const server: PeerServer = await peer.start({ port })

process.on("disconnect", () => process.exit(0))

const gc = (globalThis as { gc?: () => void }).gc
const stats = (collect: boolean): ServerStats => {
  if (collect && gc !== undefined) {
    gc()
    gc()
  }
  const memory = process.memoryUsage()
  const cpu = process.cpuUsage()
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    externalBytes: memory.external,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    handles: process.getActiveResourcesInfo().length,
    subscribers: server.subscribers(),
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system
  }
}

let seq = 0
let acked = -1
let ackWaiter: (() => void) | undefined
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// The slowest client's delivery rate (events/s), smoothed, measured from its acks.
let rate = 0
let rateFrom = { us: 0, seq: -1 }
const onAck = (ackedSeq: number): void => {
  if (ackedSeq <= acked) return
  acked = ackedSeq
  const now = nowUs()
  if (now - rateFrom.us >= 20_000) {
    const sample = ((acked - rateFrom.seq) * 1e6) / (now - rateFrom.us)
    rate = rate === 0 ? sample : rate * 0.7 + sample * 0.3
    rateFrom = { us: now, seq: acked }
  }
  ackWaiter?.()
}

const publishOne = (payloadBytes: number, timeUs: string): void | Promise<void> => {
  const id = seq++
  return server.publish(String(id), makePayload(id, timeUs, payloadBytes))
}

/**
 * Publishes as fast as the slowest client takes the events: at most `aheadMs` of its delivery
 * rate ahead of it (within the window bounds), so that the run stays bounded and drains fast
 * whatever the peer's speed.
 */
const burst = async (command: Extract<ServerCommand, { type: "burst" }>): Promise<ServerResults["burst"]> => {
  const first = seq
  const last = first + command.events
  const startUs = nowUs()
  const deadline = startUs + command.timeCapMs * 1000
  rate = 0
  rateFrom = { us: startUs, seq: acked }
  for (;;) {
    if (seq >= last || nowUs() >= deadline) break
    const window = Math.min(command.maxWindow, Math.max(command.minWindow, (rate * command.aheadMs) / 1000))
    const room = Math.floor(window - (seq - 1 - acked))
    if (room <= 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        ackWaiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      ackWaiter = undefined
      continue
    }
    const n = Math.min(command.burst, room, last - seq)
    let timeUs = String(nowUs())
    for (let i = 0; i < n; i++) {
      const pending = publishOne(command.payloadBytes, timeUs)
      if (pending !== undefined) {
        await pending
        timeUs = String(nowUs())
      }
    }
    await immediate()
  }
  return { published: seq - first, startUs, endUs: nowUs() }
}

/**
 * Publishes one event per event-loop turn, each in a turn of its own (as one event per
 * incoming request would), every 1/perSecond s or as soon as the previous one's turn is
 * over when behind schedule.
 */
const trickle = async (command: Extract<ServerCommand, { type: "trickle" }>): Promise<ServerResults["trickle"]> => {
  const first = seq
  const intervalUs = 1e6 / command.perSecond
  const startUs = nowUs()
  const capUs = startUs + command.timeCapMs * 1000
  for (let k = 0; k < command.events && nowUs() < capUs; k++) {
    const waitUs = startUs + k * intervalUs - nowUs()
    if (waitUs > 1000) await sleep(waitUs / 1000)
    const pending = publishOne(command.payloadBytes, String(nowUs()))
    if (pending !== undefined) await pending
    await immediate()
  }
  return { published: seq - first, startUs, endUs: nowUs() }
}

/** Publishes one event every 1/perSecond s, on schedule (late ticks do not shift the rest). */
const paced = async (command: Extract<ServerCommand, { type: "paced" }>): Promise<ServerResults["paced"]> => {
  const first = seq
  const intervalUs = 1e6 / command.perSecond
  const startUs = nowUs()
  for (let k = 0; k < command.events; k++) {
    const waitUs = startUs + k * intervalUs - nowUs()
    if (waitUs > 1000) await sleep(waitUs / 1000)
    const pending = publishOne(command.payloadBytes, String(nowUs()))
    if (pending !== undefined) await pending
  }
  return { published: seq - first, startUs, endUs: nowUs() }
}

let ticker: { timer: NodeJS.Timeout; first: number; startUs: number } | undefined
const tick = (command: Extract<ServerCommand, { type: "ticker" }>): ServerResults["ticker"] => {
  if (ticker !== undefined) {
    clearInterval(ticker.timer)
    const result = { published: seq - ticker.first, startUs: ticker.startUs, endUs: nowUs() }
    ticker = undefined
    if (command.intervalMs === 0) return result
  }
  const startUs = nowUs()
  if (command.intervalMs > 0) {
    const timer = setInterval(() => void publishOne(command.payloadBytes, String(nowUs())), command.intervalMs)
    ticker = { timer, first: seq, startUs }
  }
  return { published: 0, startUs, endUs: startUs }
}

const waitSubscribers = async (
  command: Extract<ServerCommand, { type: "waitSubscribers" }>
): Promise<ServerResults["waitSubscribers"]> => {
  const start = performance.now()
  const inRange = () => server.subscribers() >= command.atLeast && server.subscribers() <= command.atMost
  while (!inRange() && performance.now() - start < command.timeoutMs) await sleep(5)
  return { ok: inRange(), subscribers: server.subscribers(), ms: performance.now() - start }
}

const handle = async (command: ServerCommand): Promise<unknown> => {
  switch (command.type) {
    case "stats":
      return stats(command.gc)
    case "burst":
      return burst(command)
    case "paced":
      return paced(command)
    case "trickle":
      return trickle(command)
    case "ticker":
      return tick(command)
    case "waitSubscribers":
      return waitSubscribers(command)
    case "heapSnapshot": {
      const heapUsedBytes = stats(true).heapUsedBytes
      return { path: writeHeapSnapshot(command.path), heapUsedBytes }
    }
    case "ack":
      return undefined
  }
}

process.on("message", (command: ServerCommand) => {
  if (command.type === "ack") return onAck(command.seq)
  handle(command).then(
    (result) => send({ type: "reply", id: command.id, result }),
    (error: unknown) => send({ type: "error", id: command.id, message: String(error) })
  )
})

send({ type: "ready", port: server.port, description: peer.description })
