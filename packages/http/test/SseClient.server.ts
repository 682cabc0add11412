// A scripted node:http server for the SSE client tests: each request is handed to the test's
// script with its number, and the test can wait for the n-th request or for a socket to close.
import { Deferred, Effect } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"

export interface Exchange {
  /** 1-based request number. */
  readonly n: number
  readonly req: Http.IncomingMessage
  readonly res: Http.ServerResponse
  /** The request body, read before the script runs. */
  readonly body: string
  /** Completes when this request's socket is closed (by either side). */
  readonly closed: Effect.Effect<void>
  /** `Last-Event-ID` as the UTF-8 text the client sent (Node reads header bytes as latin1). */
  readonly lastEventId: string | undefined
}

export interface ScriptedServer {
  readonly url: (path?: string) => string
  readonly exchanges: ReadonlyArray<Exchange>
  /** Waits until the n-th request has arrived, and returns it. */
  readonly request: (n: number) => Effect.Effect<Exchange>
  /** Open TCP connections right now. */
  readonly openSockets: () => number
}

/** Starts an SSE-ish response: 200, text/event-stream, headers flushed at once. */
export const sseHead = (res: Http.ServerResponse, contentType = "text/event-stream") => {
  res.writeHead(200, { "content-type": contentType, "cache-control": "no-cache" })
  res.flushHeaders()
}

/** Serves `script` on 127.0.0.1, port 0, for the lifetime of the scope. */
export const scriptedServer = (script: (exchange: Exchange) => void) =>
  Effect.acquireRelease(
    Effect.callback<ScriptedServer & { readonly server: Http.Server }>((resume) => {
      const exchanges: Array<Exchange> = []
      const waiters: Array<{ n: number; done: Deferred.Deferred<Exchange> }> = []
      const sockets = new Set<Net.Socket>()
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const closed = Deferred.makeUnsafe<void>()
          if (req.socket.destroyed) Deferred.doneUnsafe(closed, Effect.void)
          else req.socket.once("close", () => Deferred.doneUnsafe(closed, Effect.void))
          const raw = req.headers["last-event-id"]
          const exchange: Exchange = {
            n: exchanges.length + 1,
            req,
            res,
            body: Buffer.concat(chunks).toString("utf8"),
            closed: Deferred.await(closed),
            lastEventId: typeof raw === "string" ? Buffer.from(raw, "latin1").toString("utf8") : undefined
          }
          exchanges.push(exchange)
          script(exchange)
          for (let i = waiters.length - 1; i >= 0; i--) {
            if (waiters[i]!.n === exchange.n) {
              Deferred.doneUnsafe(waiters.splice(i, 1)[0]!.done, Effect.succeed(exchange))
            }
          }
        })
      })
      server.on("connection", (socket) => {
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address() as Net.AddressInfo
        resume(Effect.succeed({
          server,
          url: (path = "/events") => `http://127.0.0.1:${address.port}${path}`,
          exchanges,
          request: (n) =>
            Effect.suspend(() => {
              const found = exchanges[n - 1]
              if (found !== undefined) return Effect.succeed(found)
              const done = Deferred.makeUnsafe<Exchange>()
              waiters.push({ n, done })
              return Deferred.await(done)
            }),
          openSockets: () => sockets.size
        }))
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export const closedPort = Effect.callback<number>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})
