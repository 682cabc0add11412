/**
 * A load client: one process holding many SSE connections to a peer (node:http to
 * 127.0.0.1), parsing every stream with `SseParser` and recording publish-to-receive latency
 * from the timestamp in each payload. Driven by the runner (see `Ipc.ts`); exits when the
 * runner goes away.
 */
import { type ClientRequest, get, type IncomingMessage } from "node:http"
import { Histogram } from "./Histogram.ts"
import type { ClientCommand, ClientMessage, ClientResults } from "./Ipc.ts"
import { head, nowUs, readHead } from "./Payload.ts"
import { eventsPath } from "./Peer.ts"
import { SseParser } from "./SseParser.ts"

const send = (message: ClientMessage): void => {
  process.send?.(message)
}
process.on("disconnect", () => process.exit(0))
// Destroying a request mid-response creates an error ("aborted", "socket hang up") that the
// clients ignore; without stack traces those cost nothing, so churn measures the server.
Error.stackTraceLimit = 0

const ignore = () => {}
const request = (port: number, onResponse: (res: IncomingMessage) => void): ClientRequest => {
  const req = get({ host: "127.0.0.1", port, path: eventsPath, agent: false, headers: { accept: "text/event-stream" } })
  req.on("response", onResponse)
  req.on("error", ignore)
  return req
}

interface Connection {
  readonly req: ClientRequest
  lastSeq: number
  open: boolean
}

const connections = new Set<Connection>()

// What is being measured, shared by all connections of this process.
let tracking = false
let trackFrom = 0
let trackFromUs = 0
let chunkUs = 0
let events = 0
let allEvents = 0
let firstUs = Number.POSITIVE_INFINITY
let bytes = 0
let seqErrors = 0
let lastUs = 0
let lost = 0
let latency = new Histogram()
let cpuStart = process.cpuUsage()
let progressTimer: NodeJS.Timeout | undefined
let finishing: { readonly lastSeq: number; remaining: number; readonly done: () => void } | undefined

const reached = (connection: Connection) => {
  if (finishing !== undefined && connection.lastSeq >= finishing.lastSeq) {
    if (--finishing.remaining === 0) finishing.done()
  }
}

const connect = (port: number, onOpen: (ok: boolean) => void): void => {
  let opened = false
  const connection: Connection = {
    req: request(port, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        connection.req.destroy()
        return
      }
      opened = true
      connection.open = true
      connections.add(connection)
      onOpen(true)
      const parser = new SseParser((event) => {
        if (!readHead(event.dataBytes, event.dataOffset, event.dataLength)) return
        const seq = head.seq
        if (seq !== connection.lastSeq + 1) seqErrors++
        const before = connection.lastSeq
        connection.lastSeq = seq
        if (!tracking) return
        allEvents++
        if (seq < trackFrom && head.timeUs < trackFromUs) return
        if (head.timeUs < firstUs) firstUs = head.timeUs
        events++
        latency.record(chunkUs - head.timeUs)
        lastUs = chunkUs
        if (finishing !== undefined && before < finishing.lastSeq) reached(connection)
      })
      res.on("data", (chunk: Buffer) => {
        chunkUs = nowUs()
        if (tracking) bytes += chunk.length
        parser.feed(chunk)
      })
      res.on("error", ignore)
    }),
    lastSeq: -1,
    open: false
  }
  connection.req.on("close", () => {
    if (!opened) return onOpen(false)
    if (connection.open) {
      connection.open = false
      connections.delete(connection)
      if (tracking) lost++
      if (finishing !== undefined && connection.lastSeq < finishing.lastSeq) {
        if (--finishing.remaining === 0) finishing.done()
      }
    }
  })
}

/** Opens `count` connections, at most `concurrency` of them connecting at once. */
const open = (command: Extract<ClientCommand, { type: "open" }>): Promise<ClientResults["open"]> =>
  new Promise((resolve) => {
    let started = 0
    let opened = 0
    let failed = 0
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      resolve({ opened, failed: failed + (command.count - opened - failed) })
    }
    const timer = setTimeout(finish, command.timeoutMs)
    const next = () => {
      if (finished) return
      if (opened + failed === command.count) return finish()
      if (started < command.count) {
        started++
        connect(command.port, (ok) => {
          if (ok) opened++
          else failed++
          next()
        })
      }
    }
    if (command.count === 0) return finish()
    for (let i = 0; i < Math.min(command.concurrency, command.count); i++) next()
  })

const minSeq = (): number => {
  let min = Number.POSITIVE_INFINITY
  for (const connection of connections) if (connection.lastSeq < min) min = connection.lastSeq
  return min === Number.POSITIVE_INFINITY ? -1 : min
}

const track = (command: Extract<ClientCommand, { type: "track" }>): null => {
  tracking = true
  trackFrom = command.fromSeq
  trackFromUs = command.fromUs ?? Number.POSITIVE_INFINITY
  events = 0
  allEvents = 0
  firstUs = Number.POSITIVE_INFINITY
  bytes = 0
  seqErrors = 0
  lastUs = 0
  lost = 0
  latency = new Histogram()
  cpuStart = process.cpuUsage()
  let sent = -2
  clearInterval(progressTimer)
  progressTimer = setInterval(() => {
    const min = minSeq()
    if (min !== sent) {
      sent = min
      send({ type: "progress", minSeq: min })
    }
  }, command.progressEveryMs)
  return null
}

/** Waits until every connection has received `lastSeq` (or time runs out), then reports. */
const finish = (command: Extract<ClientCommand, { type: "finish" }>): Promise<ClientResults["finish"]> =>
  new Promise((resolve) => {
    let remaining = 0
    for (const connection of connections) if (connection.lastSeq < command.lastSeq) remaining++
    const report = () => {
      clearTimeout(timer)
      clearInterval(progressTimer)
      const incomplete = finishing?.remaining ?? 0
      finishing = undefined
      tracking = false
      const cpu = process.cpuUsage(cpuStart)
      resolve({
        connections: connections.size,
        events,
        allEvents,
        firstUs,
        bytes,
        seqErrors,
        incomplete: Math.max(0, incomplete),
        lost,
        latency: latency.toData(),
        lastUs,
        cpuUs: cpu.user + cpu.system
      })
    }
    const timer = setTimeout(report, command.timeoutMs)
    finishing = { lastSeq: command.lastSeq, remaining, done: report }
    if (remaining === 0) report()
  })

const closeAll = (): Promise<ClientResults["closeAll"]> =>
  new Promise((resolve) => {
    tracking = false
    clearInterval(progressTimer)
    let left = connections.size
    if (left === 0) return resolve(null)
    const timer = setTimeout(() => resolve(null), 10_000)
    for (const connection of connections) {
      connection.open = false
      connection.req.once("close", () => {
        if (--left === 0) {
          clearTimeout(timer)
          resolve(null)
        }
      })
      connection.req.destroy()
    }
    connections.clear()
  })

/** Connect, read 1 to 3 events, destroy; `cycles` times, `concurrency` at once. */
const churn = (command: Extract<ClientCommand, { type: "churn" }>): Promise<ClientResults["churn"]> =>
  new Promise((resolve) => {
    const startUs = nowUs()
    const cpu = process.cpuUsage()
    let started = 0
    let active = 0
    let completed = 0
    let failed = 0
    let received = 0
    let stopped = false
    const report = () => {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      const used = process.cpuUsage(cpu)
      resolve({ completed, failed, events: received, elapsedUs: nowUs() - startUs, cpuUs: used.user + used.system })
    }
    const timer = setTimeout(report, command.timeoutMs)
    const capUs = startUs + command.timeCapMs * 1000
    const cycle = () => {
      if (stopped) return
      if (started >= command.cycles || nowUs() >= capUs) {
        if (active === 0) report()
        return
      }
      const want = 1 + (started % 3)
      started++
      active++
      let got = 0
      const req = request(command.port, (res) => {
        const parser = new SseParser((event) => {
          if (!readHead(event.dataBytes, event.dataOffset, event.dataLength) || got >= want) return
          got++
          received++
          if (got === want) req.destroy()
        })
        res.on("data", (chunk: Buffer) => parser.feed(chunk))
        res.on("error", ignore)
      })
      // A cycle that gets no events within 5 s counts as failed.
      req.setTimeout(5000, () => req.destroy())
      req.on("close", () => {
        active--
        if (got === want) completed++
        else failed++
        cycle()
      })
    }
    for (let i = 0; i < Math.min(command.concurrency, command.cycles); i++) cycle()
  })

const handle = async (command: ClientCommand): Promise<unknown> => {
  switch (command.type) {
    case "open":
      return open(command)
    case "track":
      return track(command)
    case "finish":
      return finish(command)
    case "closeAll":
      return closeAll()
    case "churn":
      return churn(command)
  }
}

process.on("message", (command: ClientCommand) => {
  handle(command).then(
    (result) => send({ type: "reply", id: command.id, result }),
    (error: unknown) => send({ type: "error", id: command.id, message: String(error) })
  )
})

send({ type: "ready" })
