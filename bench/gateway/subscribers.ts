/**
 * Subscribers of the gateway benchmark, in a process of their own so that
 * reading a thousand streams never starves the runner's publishers (one
 * event loop cannot do both fairly). Driven over IPC by run.ts:
 *
 * - `{ open: { port, path, n, measure } }` → `{ opened: n, accepted }` (accepted: status 200)
 * - `{ waitFor: total, timeoutMs? }` → `{ reached: received }` once `total`
 *   events arrived (or `timedOut: true` after `timeoutMs`, default 30 s)
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
let perSubscriber: Array<{ n: number; ended: boolean }> = []
let accepted = 0
let waiters: Array<{ total: number; timer: ReturnType<typeof setTimeout> }> = []

const send = (message: unknown) => process.send!(message)

const check = () => {
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (received >= waiters[i]!.total) {
      clearTimeout(waiters.splice(i, 1)[0]!.timer)
      send({ reached: received })
    }
  }
}

const open = (port: number, path: string, n: number, measure: boolean) =>
  Promise.all(Array.from({ length: n }, () =>
    new Promise<void>((resolve, reject) => {
      const req = Http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        if (res.statusCode === 200) accepted++
        const mine = { n: 0, ended: false }
        perSubscriber.push(mine)
        res.on("close", () => (mine.ended = true))
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
            mine.n++
            if (measure) latencies.push(now - Number(text.slice(at + 8, end)))
            at = text.indexOf("data: t=", end)
          }
          // Keep what may be the start of a marker cut by the chunk boundary
          // (it holds no whole marker, so nothing is counted twice).
          tail = at === -1 ? text.slice(-7) : text.slice(at)
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
    perSubscriber = []
    accepted = 0
    void open(m.open.port, m.open.path, m.open.n, m.open.measure).then(() => send({ opened: m.open.n, accepted }))
  } else if (m.waitFor !== undefined) {
    // Bounded: a subscriber that was cut off must not hang the run.
    const waiter = {
      total: m.waitFor,
      timer: setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter)
        send({ reached: received, timedOut: true })
      }, m.timeoutMs ?? 30_000)
    }
    waiters.push(waiter)
    check()
  } else if (m.stats) {
    const counts = perSubscriber.map((p) => p.n).toSorted((a, b) => a - b)
    send({
      received,
      latencies,
      subscribers: { min: counts[0], max: counts.at(-1), ended: perSubscriber.filter((p) => p.ended).length }
    })
  } else if (m.close) {
    for (const r of requests) r.destroy()
    requests = []
    for (const w of waiters) clearTimeout(w.timer)
    waiters = []
    send({ closed: true })
  }
})
