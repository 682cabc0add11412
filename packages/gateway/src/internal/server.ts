/**
 * One listening port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge
 * (h2c): the first bytes of each connection decide. An HTTP/2 client opens
 * with the connection preface (`PRI * HTTP/2.0…`), which no HTTP/1.1 request
 * can start with; such a connection goes to an HTTP/2 server whose requests
 * are handed to the HTTP/1.1 server's request listeners, so the application
 * (effect's `NodeHttpServer`, which accepts both kinds) sees one server.
 *
 * Browsers speak HTTP/2 only over TLS; h2c serves other clients and proxies
 * that talk HTTP/2 to their upstreams (a TLS-terminating proxy in front of
 * the gateway gives browsers HTTP/2).
 *
 * @internal
 */
import * as Http from "node:http"
import * as Http2 from "node:http2"
import type * as Net from "node:net"

/** @internal */
export const createServer = (): Http.Server => {
  // No request timeout: an SSE request is received at once, and its response
  // lasts as long as the stream.
  const h1 = Http.createServer({ requestTimeout: 0 })
  const h2 = Http2.createServer()
  const listeners = h1.listeners("connection") as Array<(socket: Net.Socket) => void>
  h1.removeAllListeners("connection")
  const toHttp1 = (socket: Net.Socket) => {
    for (const listener of listeners) listener.call(h1, socket)
  }
  h1.on("connection", (socket: Net.Socket) => {
    const onReadable = () => {
      const head = socket.read() as Buffer | null
      if (head === null) return
      const text = head.subarray(0, 3).toString("latin1")
      socket.unshift(head)
      // Too short to tell: wait for more bytes.
      if (head.length < 3 && "PRI".startsWith(text)) return
      socket.off("readable", onReadable)
      if (text === "PRI") h2.emit("connection", socket)
      else toHttp1(socket)
    }
    socket.on("readable", onReadable)
  })
  h2.on("request", (request, response) => h1.emit("request", request, response))
  // effect's NodeHttpServer closes the HTTP/2 sessions it is told about on shutdown.
  h2.on("session", (session) => h1.emit("session", session))
  return h1
}
