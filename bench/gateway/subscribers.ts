/**
 * Subscribers of the gateway benchmark, in a process of their own so that
 * reading a thousand streams never starves the runner's publishers (one
 * event loop cannot do both fairly). Driven over IPC by run.ts:
 *
 * - `{ open: { port, path, n, measure } }` → `{ opened: n }`
 * - `{ waitFor: total }` → `{ reached: received }` once `total` events arrived
 * - `{ stats: true }` → `{ received, latencies }` (latencies only when measuring)
 * - `{ close: true }` → `{ closed: true }`
 *
 * Each event's data is `t=<send time>` (epoch milliseconds, high resolution:
 * `performance.timeOrigin + performance.now()`, comparable across processes).
 */
import * as Http from "node:http"

let received = 0
let latencies: Array<number> = []
let requests: Array<Http.ClientRequest> = []
let waiters: Array<{ total: number }> = []

const send = (message: unknown) => process.send!(message)

const check = () => {
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (received >= waiters[i]!.total) {
      waiters.splice(i, 1)
      send({ reached: received })
    }
  }
}

const open = (port: number, path: string, n: number, measure: boolean) =>
  Promise.all(Array.from({ length: n }, () =>
    new Promise<void>((resolve, reject) => {
      const req = Http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let tail = ""
        res.on("data", (chunk: Buffer) => {
          const now = performance.timeOrigin + performance.now()
          const text = tail + chunk.toString("latin1")
          let at = text.indexOf("data: t=")
          let end = 0
          while (at !== -1) {
            end = text.indexOf("\n", at)
            if (end === -1) break
            received++
            if (measure) latencies.push(now - Number(text.slice(at + 8, end)))
            at = text.indexOf("data: t=", end)
          }
          tail = at === -1 ? "" : text.slice(at)
          check()
        })
        resolve()
      })
      req.on("error", reject)
      requests.push(req)
    })))

process.on("message", (m: any) => {
  if (m.open !== undefined) {
    received = 0
    latencies = []
    void open(m.open.port, m.open.path, m.open.n, m.open.measure).then(() => send({ opened: m.open.n }))
  } else if (m.waitFor !== undefined) {
    waiters.push({ total: m.waitFor })
    check()
  } else if (m.stats) {
    send({ received, latencies })
  } else if (m.close) {
    for (const r of requests) r.destroy()
    requests = []
    waiters = []
    send({ closed: true })
  }
})
