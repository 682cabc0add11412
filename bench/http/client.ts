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
const request = (
  port: number,
  onResponse: (res: IncomingMessage) => void,
  localAddress?: string | undefined,
  lastEventId?: string | undefined
): ClientRequest => {
  const req = get({
    host: "127.0.0.1",
    port,
    path: eventsPath,
    agent: false,
    headers: lastEventId === undefined || lastEventId === ""
      ? { accept: "text/event-stream" }
      : { accept: "text/event-stream", "last-event-id": lastEventId },
    // Several source addresses: more connections than one address has ephemeral ports.
    ...(localAddress === undefined ? {} : { localAddress })
  })
  req.on("response", onResponse)
  req.on("error", ignore)
  return req
}

/** The source address of the `i`-th connection, round robin. */
const sourceOf = (addresses: ReadonlyArray<string> | undefined, i: number): string | undefined =>
  addresses === undefined || addresses.length === 0 ? undefined : addresses[i % addresses.length]

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

const connect = (port: number, onOpen: (ok: boolean) => void, localAddress?: string): void => {
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
    }, localAddress),
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
        connect(command.port, (ok) => {
          if (ok) opened++
          else failed++
          next()
        }, sourceOf(command.localAddresses, started))
        started++
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

/**
 * Connections that come back: when one closes or cannot connect, it connects again (after
 * 50 to 100 ms when the server refused or was not there), sending the id of the last event it
 * received as `Last-Event-ID`, like a resuming EventSource that does not give up.
 */
interface Resilient {
  lastId: string
  /** When it last got a 200, and the publish time of the last numbered event it received (µs). */
  backUs: number
  eventUs: number
  /** Reconnections that sent a Last-Event-ID / that could not (no event received yet). */
  withId: number
  withoutId: number
}

const resilients: Array<Resilient> = []
let resilientPort = 0
let resilientStop = false

const resilient = (port: number, localAddress: string | undefined, onFirst: (ok: boolean) => void): void => {
  const state: Resilient = { lastId: "", backUs: 0, eventUs: 0, withId: 0, withoutId: 0 }
  let first = true
  let gaveUp = false
  // Consecutive attempts without a stream: each waits twice as long (50 ms to
  // 800 ms, plus up to as much again at random), as real clients back off. A
  // fixed short delay had 10 000 clients spin on refused connects while the
  // server was down, filling the client's core before the server was back.
  let failures = 0
  const attempt = (again: boolean) => {
    if (resilientStop) return
    if (again) {
      if (state.lastId === "") state.withoutId++
      else state.withId++
    }
    let answered = false
    const retry = (delayMs: number) => {
      if (resilientStop) return
      setTimeout(() => attempt(true), delayMs + Math.random() * delayMs)
    }
    const req = request(
      resilientPort,
      (res) => {
        answered = true
        if (res.statusCode !== 200) {
          failures++
          res.resume()
          req.destroy()
          // Refused at once: this one does not count (the run says how many).
          if (first) {
            first = false
            gaveUp = true
            onFirst(false)
          }
          return
        }
        failures = 0
        state.backUs = nowUs()
        if (first) {
          first = false
          resilients.push(state)
          onFirst(true)
        }
        const parser = new SseParser((event) => {
          if (event.lastEventId !== "") state.lastId = event.lastEventId
          if (readHead(event.dataBytes, event.dataOffset, event.dataLength)) state.eventUs = head.timeUs
        })
        res.on("data", (chunk: Buffer) => parser.feed(chunk))
        res.on("error", ignore)
      },
      localAddress,
      state.lastId
    )
    // A connect or request that gets no answer (a SYN or the request dropped
    // while the server's accept queue overflows: the kernel's own retries wait
    // 1, 3, 7, 15 s…) is given up and tried again, as clients with a connect
    // timeout do.
    const unanswered = setTimeout(() => {
      if (!answered) req.destroy()
    }, 2_000)
    req.on("close", () => {
      clearTimeout(unanswered)
      if (resilientStop || gaveUp) return
      // Not there or refused: back off; a stream that was cut: come back at once.
      if (!answered) failures++
      if (failures > 0) retry(50 * 2 ** Math.min(failures - 1, 4))
      else retry(0)
    })
  }
  resilientPort = port
  attempt(false)
}

const openResilient = (command: Extract<ClientCommand, { type: "resilient" }>): Promise<ClientResults["resilient"]> =>
  new Promise((resolve) => {
    resilientStop = false
    let started = 0
    let done = 0
    let failed = 0
    const timer = setTimeout(
      () => resolve({ opened: done - failed, failed: command.count - (done - failed) }),
      command.timeoutMs
    )
    const next = () => {
      if (done === command.count) {
        clearTimeout(timer)
        return resolve({ opened: done - failed, failed })
      }
      if (started < command.count) {
        resilient(command.port, sourceOf(command.localAddresses, started), (ok) => {
          done++
          if (!ok) failed++
          next()
        })
        started++
      }
    }
    for (let i = 0; i < Math.min(command.concurrency, command.count); i++) next()
  })

/** Waits until every resilient connection is back (a 200 after `afterUs`) and got an event published after it. */
const storm = (command: Extract<ClientCommand, { type: "storm" }>): Promise<ClientResults["storm"]> =>
  new Promise((resolve) => {
    const started = performance.now()
    const check = () => {
      let back = 0
      let live = 0
      let lastBackUs = 0
      let lastEventUs = 0
      let withId = 0
      let withoutId = 0
      for (const r of resilients) {
        withId += r.withId
        withoutId += r.withoutId
        if (r.backUs > command.afterUs) {
          back++
          if (r.backUs > lastBackUs) lastBackUs = r.backUs
        }
        if (r.eventUs > command.afterUs) {
          live++
          if (r.eventUs > lastEventUs) lastEventUs = r.eventUs
        }
      }
      const all = back === resilients.length && live === resilients.length
      if (all || performance.now() - started > command.timeoutMs) {
        return resolve({ connections: resilients.length, back, live, lastBackUs, lastEventUs, withId, withoutId })
      }
      setTimeout(check, 5)
    }
    check()
  })

const stopResilient = (): null => {
  resilientStop = true
  resilients.length = 0
  return null
}

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
    case "resilient":
      return openResilient(command)
    case "storm":
      return storm(command)
    case "stopResilient":
      return stopResilient()
  }
}

process.on("message", (command: ClientCommand) => {
  handle(command).then(
    (result) => send({ type: "reply", id: command.id, result }),
    (error: unknown) => send({ type: "error", id: command.id, message: String(error) })
  )
})

send({ type: "ready" })
