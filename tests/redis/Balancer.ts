/**
 * A TCP load balancer for the failover tests: clients connect to one port,
 * each connection goes to the next backend in turn, and a backend that
 * refuses (a killed node) is skipped. Like a real balancer, it does not know
 * about SSE: a client whose node dies simply sees its connection end.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"

export interface Balancer {
  readonly port: number
  /** Which backend port each accepted connection went to, in order. */
  readonly assigned: () => ReadonlyArray<number>
}

export const make = (backends: ReadonlyArray<number>): Effect.Effect<Balancer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: Net.Server; sockets: Set<Net.Socket>; balancer: Balancer }>((resolve) => {
        const sockets = new Set<Net.Socket>()
        const assigned: Array<number> = []
        let next = 0
        const track = (socket: Net.Socket) => {
          sockets.add(socket)
          socket.once("close", () => sockets.delete(socket))
        }
        const server = Net.createServer((client) => {
          track(client)
          client.pause()
          const attempt = (tries: number) => {
            if (tries >= backends.length) {
              client.destroy()
              return
            }
            const port = backends[next++ % backends.length]!
            const upstream = Net.connect({ port, host: "127.0.0.1" })
            track(upstream)
            // Refused (a dead node): the next backend.
            const refused = () => attempt(tries + 1)
            upstream.once("error", refused)
            upstream.once("connect", () => {
              assigned.push(port)
              upstream.off("error", refused)
              upstream.on("error", () => client.destroy())
              client.on("error", () => upstream.destroy())
              client.pipe(upstream)
              upstream.pipe(client)
              client.once("close", () => upstream.destroy())
              upstream.once("close", () => client.destroy())
              client.resume()
            })
          }
          attempt(0)
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address() as Net.AddressInfo
          resolve({ server, sockets, balancer: { port: address.port, assigned: () => assigned } })
        })
      })
    ),
    ({ server, sockets }) =>
      Effect.promise(() =>
        new Promise<void>((done) => {
          for (const s of sockets) s.destroy()
          server.close(() => done())
        })
      )
  ).pipe(Effect.map(({ balancer }) => balancer))
