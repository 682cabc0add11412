/**
 * A lean closed-loop HTTP/1.1 load generator for the gateway benchmark: each
 * of `connections` keep-alive sockets sends one request (bytes built once),
 * reads the whole response (status line, headers, a `Content-Length` body),
 * and sends the next, until the deadline.
 *
 * Why not `node:http`'s client: at a few thousand requests per second its
 * own cost (a parser, an `IncomingMessage`, an agent per request) fills the
 * runner's core before the server's, and the figure then measures the
 * client. This one parses only what it must (the status and the body's
 * length), so the server's core is what bounds the figure.
 *
 * @internal
 */
import * as Net from "node:net"

/** Counts of one load: requests answered 2xx, and the others. */
export interface Counts {
  readonly ok: number
  readonly failed: number
}

const headerEnd = Buffer.from("\r\n\r\n")

/** Runs `connections` loops of `POST path` with `body` for `seconds`. */
export const load = (
  options: {
    readonly port: number
    readonly path: string
    readonly body: string
    readonly headers: Record<string, string>
    readonly connections: number
    readonly seconds: number
  }
): Promise<Counts> => {
  const { body, connections, headers, path, port, seconds } = options
  const head = [
    `POST ${path} HTTP/1.1`,
    `host: 127.0.0.1:${port}`,
    `content-length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    ""
  ].join("\r\n")
  const request = Buffer.from(head + body)
  const deadline = performance.now() + seconds * 1000
  let ok = 0
  let failed = 0
  const loop = () =>
    new Promise<void>((resolve, reject) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      socket.setNoDelay(true)
      let pending: Buffer = Buffer.alloc(0)
      const next = () => {
        if (performance.now() >= deadline) {
          socket.end()
          return resolve()
        }
        socket.write(request)
      }
      socket.on("connect", next)
      socket.on("error", reject)
      socket.on("data", (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
        // One response per request (no pipelining): complete once its body is in.
        const end = pending.indexOf(headerEnd)
        if (end === -1) return
        const text = pending.toString("latin1", 0, end)
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(text)
        if (length === null) return reject(new Error(`a response without content-length: ${text}`))
        const total = end + 4 + Number(length[1])
        if (pending.length < total) return
        const status = Number(text.slice(9, 12))
        if (status >= 200 && status < 300) ok++
        else failed++
        pending = pending.subarray(total)
        next()
      })
    })
  return Promise.all(Array.from({ length: connections }, loop)).then(() => ({ ok, failed }))
}
