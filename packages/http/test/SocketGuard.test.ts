import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { SocketGuard } from "../src/index.ts"

const servers: Array<Http.Server> = []
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
})

// A server whose /hold requests never get an answer (like open streams).
const listen = async (options: SocketGuard.Options) => {
  const server = SocketGuard.createServer(options)
  server.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    if (req.url === "/hold") {
      res.writeHead(200, { "content-type": "text/event-stream" })
      res.write(": open\n\n")
      return
    }
    res.end(JSON.stringify({ status: "ok", hwm: res.writableHighWaterMark }))
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { server, port: (server.address() as AddressInfo).port }
}

const connect = (port: number) =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port }, () => resolve(socket))
    socket.on("error", reject)
  })

const closed = (socket: Net.Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve()
    socket.on("error", () => {})
    socket.once("close", () => resolve())
  })

const getHealth = (port: number) =>
  new Promise<{ status: number; body: any }>((resolve, reject) => {
    Http.get({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
      let text = ""
      res.on("data", (c: Buffer) => (text += c.toString()))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    }).on("error", reject)
  })

// Resolves once `condition` holds, checking on every turn of the event loop (bounded).
const until = async (condition: () => boolean, turns = 200_000) => {
  for (let i = 0; i < turns && !condition(); i++) await new Promise((r) => setImmediate(r))
  return condition()
}

describe("SocketGuard", () => {
  it("closes sockets that sent nothing within silentTimeout; sockets that spoke stay", async () => {
    const { server, port } = await listen({ silentTimeout: "300 millis" })
    const silent = await Promise.all(Array.from({ length: 5 }, () => connect(port)))
    const talker = await connect(port)
    talker.write("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    await Promise.all(silent.map(closed))
    expect(SocketGuard.stats(server)).toMatchObject({ silentTimeouts: 5, silent: 0 })
    expect(talker.destroyed).toBe(false)
    talker.destroy()
  }, 15_000)

  it("at the cap, the oldest silent socket makes room: /health still answers", async () => {
    const { server, port } = await listen({ maxSockets: 6, silentTimeout: false })
    const holders = await Promise.all(Array.from({ length: 2 }, () => connect(port)))
    for (const h of holders) h.write("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    const silent = await Promise.all(Array.from({ length: 4 }, () => connect(port)))
    expect(await until(() => SocketGuard.stats(server)?.open === 6)).toBe(true)
    const answer = await getHealth(port)
    expect(answer.status).toBe(200)
    await closed(silent[0]!)
    expect(SocketGuard.stats(server)).toMatchObject({ evictedSilent: 1, overLimit: 0, maxSockets: 6 })
    expect(holders.every((h) => !h.destroyed)).toBe(true)
    for (const s of [...holders, ...silent]) s.destroy()
  }, 15_000)

  it("at the cap with no silent socket, the new socket is closed at once", async () => {
    const { server, port } = await listen({ maxSockets: 3 })
    const holders = await Promise.all(Array.from({ length: 3 }, () => connect(port)))
    for (const h of holders) h.write("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(await until(() => SocketGuard.stats(server)?.silent === 0 && SocketGuard.stats(server)?.open === 3))
      .toBe(true)
    const extra = Net.connect({ host: "127.0.0.1", port })
    extra.on("connect", () => extra.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
    let answered = false
    extra.on("data", () => (answered = true))
    await closed(extra)
    expect(answered).toBe(false)
    expect(SocketGuard.stats(server)).toMatchObject({ overLimit: 1, open: 3 })
    for (const h of holders) h.destroy()
  }, 15_000)

  it("incomplete headers are answered 408 within headersTimeout plus a second", async () => {
    const { port } = await listen({ headersTimeout: "300 millis" })
    const socket = await connect(port)
    const started = performance.now()
    socket.write("GET /health HTTP/1.1\r\nHost: x\r\n")
    let text = ""
    socket.on("data", (c: Buffer) => (text += c.toString()))
    await closed(socket)
    expect(text).toMatch(/^HTTP\/1\.1 408/)
    expect(performance.now() - started).toBeLessThan(3_000)
  }, 15_000)

  it("sets the sockets' high-water mark; invalid options throw, naming the option", async () => {
    const { port } = await listen({ highWaterMark: 4_096 })
    expect((await getHealth(port)).body.hwm).toBe(4_096)
    expect(() => SocketGuard.createServer({ maxSockets: 0 })).toThrow(/maxSockets/)
    expect(() => SocketGuard.createServer({ highWaterMark: Number.NaN })).toThrow(/highWaterMark/)
    expect(() => SocketGuard.createServer({ silentTimeout: "soon" as never })).toThrow(/silentTimeout/)
    expect(SocketGuard.stats(Http.createServer())).toBe(undefined)
  })
})
