/**
 * The attacks of the overload tests (and, at full size, of `pnpm bench
 * --full`), as plain Node clients on loopback: health probes, stream floods
 * over raw sockets, silent sockets, task floods, and a process's memory
 * read from /proc. Every loop is bounded in count, and every wait in time.
 */
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"

/** One `GET /health` on a fresh connection: its status and how long the whole answer took. */
export const health = (port: number, timeoutMs = 10_000): Promise<{ status: number; ms: number; body: any }> =>
  new Promise((resolve) => {
    const start = performance.now()
    const req = Http.get({ host: "127.0.0.1", port, path: "/health", agent: false, timeout: timeoutMs }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (text += c))
      res.on("end", () => {
        let body: unknown
        try {
          body = JSON.parse(text)
        } catch {
          body = text
        }
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - start, body })
      })
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => resolve({ status: 0, ms: performance.now() - start, body: undefined }))
  })

export interface Latencies {
  readonly count: number
  /** Probes that got no 200 (refused, reset or timed out). */
  readonly failed: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export const summarize = (samples: ReadonlyArray<{ status: number; ms: number }>): Latencies => {
  const ms = samples.map((s) => s.ms).toSorted((a, b) => a - b)
  const at = (q: number) => ms.length === 0 ? Number.NaN : ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!
  return {
    count: samples.length,
    failed: samples.filter((s) => s.status !== 200).length,
    p50: at(0.5),
    p99: at(0.99),
    max: ms.length === 0 ? Number.NaN : ms[ms.length - 1]!
  }
}

/** Probes `/health` every `everyMs` (one at a time) until `stop`. */
export const probeHealth = (port: number, everyMs = 100) => {
  const samples: Array<{ status: number; ms: number }> = []
  const state = { running: true }
  const done = (async () => {
    while (state.running) {
      samples.push(await health(port))
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    samples,
    stop: async (): Promise<Latencies> => {
      state.running = false
      await done
      return summarize(samples)
    }
  }
}

export interface StreamFlood {
  /** Streams answered 200 and still open. */
  readonly open: Array<Net.Socket>
  /** Refusals by status, with the Retry-After values seen. */
  readonly refused: Map<number, Array<string | undefined>>
  /** Refusals by status and the start of their problem detail (when it came with the head). */
  readonly reasons: Map<string, number>
  /** Sockets that failed before any answer (reset, refused, timed out). */
  readonly failed: number
  /** Bytes received on each open stream so far. */
  readonly bytes: WeakMap<Net.Socket, number>
  readonly close: () => void
}

/**
 * Opens `n` SSE streams on `path` over raw sockets, `concurrency` at a time,
 * and keeps the accepted ones open (reading and counting their bytes).
 */
export const floodStreams = async (
  port: number,
  path: string,
  n: number,
  concurrency = 200,
  timeoutMs = 15_000
): Promise<StreamFlood> => {
  const open: Array<Net.Socket> = []
  const refused = new Map<number, Array<string | undefined>>()
  const reasons = new Map<string, number>()
  const bytes = new WeakMap<Net.Socket, number>()
  let failed = 0
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      let head = ""
      let settled = false
      const settle = () => {
        settled = true
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        if (settled) return
        failed++
        socket.destroy()
        settle()
      }, timeoutMs)
      socket.setNoDelay(true)
      socket.on("connect", () =>
        socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`))
      socket.on("data", (chunk: Buffer) => {
        if (settled) {
          bytes.set(socket, (bytes.get(socket) ?? 0) + chunk.length)
          return
        }
        head += chunk.toString("latin1")
        const end = head.indexOf("\r\n\r\n")
        if (end === -1) {
          return
        }
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
        if (status === 200) {
          open.push(socket)
          bytes.set(socket, head.length)
        } else {
          const list = refused.get(status) ?? []
          list.push(/\r\nretry-after: *([^\r]*)/i.exec(head.slice(0, end))?.[1])
          refused.set(status, list)
          const detail = /"detail":"([^"(]*)/.exec(head.slice(end))?.[1]?.trim() ?? "?"
          const key = `${status} ${detail.replace(/\d+/g, "N")}`
          reasons.set(key, (reasons.get(key) ?? 0) + 1)
          socket.destroy()
        }
        settle()
      })
      socket.on("error", () => {})
      socket.on("close", () => {
        if (settled) {
          return
        }
        failed++
        settle()
      })
    })
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      await one()
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return {
    open,
    refused,
    reasons,
    get failed() {
      return failed
    },
    bytes,
    close: () => {
      for (const s of open) s.destroy()
    }
  }
}

/** Opens `n` sockets that never send a byte; resolves once each is connected or failed. */
export const silentSockets = async (port: number, n: number, concurrency = 500) => {
  const sockets: Array<Net.Socket> = []
  let closedByServer = 0
  let failed = 0
  let next = 0
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      socket.on("connect", () => {
        sockets.push(socket)
        resolve()
      })
      socket.on("error", () => {})
      socket.on("close", () => {
        if (sockets.includes(socket)) closedByServer++
        else {
          failed++
          resolve()
        }
      })
    })
  const worker = async () => {
    while (next < n) {
      next++
      await one()
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return {
    sockets,
    /** Connected sockets the server closed since. */
    closedByServer: () => closedByServer,
    failed: () => failed,
    close: () => {
      for (const s of sockets) s.destroy()
    }
  }
}

/** POSTs a JSON body (with `headers`) and returns the status and the parsed body. */
export const post = async (
  port: number,
  path: string,
  body: string,
  headers: Record<string, string>
): Promise<{ status: number; headers: Headers; body: any }> => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers,
    body,
    signal: AbortSignal.timeout(15_000)
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body: parsed }
}

/** Resident memory of a process and its peak, in bytes (Linux). */
export const memoryOf = (pid: number): { rss: number; peak: number } => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) * 1024
  return { rss: kb("VmRSS"), peak: kb("VmHWM") }
}

/** Runs `f` over `items`, `concurrency` at a time. */
export const pool = async <A, B>(items: ReadonlyArray<A>, concurrency: number, f: (a: A) => Promise<B>) => {
  const out: Array<B> = []
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await f(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return out
}
