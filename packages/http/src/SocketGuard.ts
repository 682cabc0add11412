/**
 * Protections of a Node HTTP server's sockets, before and around requests:
 * what `SseServer`'s limits cannot see because no request exists yet.
 *
 * - **A cap on open sockets** (`maxSockets`): a socket beyond it is closed at
 *   once, so the process never runs out of file descriptors. Size it as the
 *   SSE stream limit plus headroom for `/health`, `/metrics` and ordinary
 *   requests. The default also stays below the process's open-file limit.
 * - **Silent sockets make room**: when the cap is reached, the oldest socket
 *   that has not sent a byte is closed to admit the new one (instead of
 *   refusing it), so idle connections can never lock out a health check.
 * - **A short timeout for silent sockets** (`silentTimeout`): a socket that
 *   has sent nothing within it is closed. Node's own header timeout is
 *   checked only every `connectionsCheckingInterval` (30 s by default); here
 *   it is `headersTimeout`, checked every second.
 * - **Bounded buffers for slow readers** (`highWaterMark`): how many bytes a
 *   socket buffers in the process before a write reports backpressure, which
 *   is what an SSE stream's slow-client policy reacts to. The kernel's own
 *   send buffer is outside Node's reach (Node 22 has no `SO_SNDBUF` for TCP):
 *   see the README for the system settings that bound it.
 *
 * Counts (`stats`): sockets open and silent, and refusals by reason
 * (`over_limit`, `evicted_silent`, `silent_timeout`).
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { SocketGuard } from "@sluice/http"
 *
 * // 10 000 SSE streams (SseServer's maxConnections) plus 256 sockets of headroom.
 * const Server = NodeHttpServer.layer(() => SocketGuard.createServer({ maxSockets: 10_256 }), { port: 8080 })
 * ```
 *
 * @since 0.2.0
 */
import { OptionCheck } from "@sluice/core"
import * as Duration from "effect/Duration"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Open sockets at most. Default 10 240, lowered to the process's
   * open-file limit less 128 where that limit can be read (Linux).
   */
  readonly maxSockets?: number | undefined
  /** A socket that has sent no byte within this is closed. `false`: never. Default 10 seconds. */
  readonly silentTimeout?: Duration.Input | false | undefined
  /** Time to receive a request's complete headers (answered 408). Default 10 seconds. */
  readonly headersTimeout?: Duration.Input | undefined
  /** How long an idle keep-alive socket waits for its next request. Default 5 seconds. */
  readonly keepAliveTimeout?: Duration.Input | undefined
  /**
   * Bytes a socket buffers in the process before writes report backpressure
   * (both directions). Default 16 KiB.
   */
  readonly highWaterMark?: number | undefined
}

/**
 * What the guard did.
 *
 * @since 0.2.0
 * @category models
 */
export interface Stats {
  readonly open: number
  /** Open sockets that have not sent a byte yet. */
  readonly silent: number
  readonly maxSockets: number
  /** New sockets closed at once: the cap was reached and no silent socket could make room. */
  readonly overLimit: number
  /** Silent sockets closed to make room for a new one. */
  readonly evictedSilent: number
  /** Silent sockets closed by `silentTimeout`. */
  readonly silentTimeouts: number
}

interface Guard {
  readonly stats: () => Stats
}

const guards = new WeakMap<Http.Server, Guard>()

const millis = (name: string, input: Duration.Input | undefined, fallback: number): number => {
  const value = OptionCheck.millis(input, fallback)
  OptionCheck.check("SocketGuard", `${name} (a finite duration above 0)`, Number.isFinite(value) && value > 0, input)
  return value
}

/** The soft open-file limit, where the system tells it (Linux). */
const openFileLimit = (): number | undefined => {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))
    return line === null ? undefined : Number(line[1])
  } catch {
    return undefined
  }
}

const resolve = (options: Options) => {
  const max = options.maxSockets
  OptionCheck.check("SocketGuard", "maxSockets (a number, at least 1)", OptionCheck.atLeast(max, 1, false), max)
  const hwm = options.highWaterMark
  OptionCheck.check(
    "SocketGuard",
    "highWaterMark (a finite number of bytes, at least 1)",
    OptionCheck.atLeast(hwm, 1),
    hwm
  )
  const files = openFileLimit()
  return {
    maxSockets: max ?? (files === undefined ? 10_240 : Math.max(1, Math.min(10_240, files - 128))),
    silentMillis: options.silentTimeout === false
      ? Number.POSITIVE_INFINITY
      : millis("silentTimeout", options.silentTimeout ?? "10 seconds", 10_000),
    headersMillis: millis("headersTimeout", options.headersTimeout ?? "10 seconds", 10_000),
    keepAliveMillis: millis("keepAliveTimeout", options.keepAliveTimeout ?? "5 seconds", 5_000),
    highWaterMark: hwm ?? 16 * 1024
  }
}

/**
 * Installs the guard on a server you made (`http.createServer(...)`). Use
 * {@link createServer} when you can: only it sets the high-water mark, which
 * Node fixes when the server is made.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http"
 * import { SocketGuard } from "@sluice/http"
 *
 * const server = SocketGuard.install(createServer(), { maxSockets: 2_000, silentTimeout: "5 seconds" })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const install = (server: Http.Server, options: Options = {}): Http.Server => {
  const o = resolve(options)
  server.headersTimeout = o.headersMillis
  // Node refuses a request timeout shorter than the header timeout (0 is off).
  if (server.requestTimeout !== 0 && server.requestTimeout < o.headersMillis) server.requestTimeout = o.headersMillis
  server.keepAliveTimeout = o.keepAliveMillis // Read when the server starts listening: header timeouts are checked every second.
  ;(server as Http.Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = 1_000
  // Sockets, oldest first, that have not sent a byte (as far as the last look saw).
  const silent = new Map<Net.Socket, number>()
  let open = 0
  let overLimit = 0
  let evictedSilent = 0
  let silentTimeouts = 0

  const spoke = (socket: Net.Socket) => socket.bytesRead > 0
  // Closes the oldest socket that is still silent; forgets those that spoke.
  const evictOne = (): boolean => {
    for (const socket of silent.keys()) {
      silent.delete(socket)
      if (spoke(socket) || socket.destroyed) continue
      socket.destroy()
      return true
    }
    return false
  }

  server.on("connection", (socket: Net.Socket) => {
    open++
    socket.once("close", () => {
      open--
      silent.delete(socket)
    })
    if (open > o.maxSockets) {
      if (evictOne()) {
        evictedSilent++
      } else {
        overLimit++
        socket.destroy()
        return
      }
    }
    if (!spoke(socket)) silent.set(socket, Date.now())
  })
  server.on("request", (request: Http.IncomingMessage) => {
    silent.delete(request.socket)
  })

  // Once a second: close the sockets silent for too long. The map is in
  // arrival order, so the walk stops at the first one that is young enough.
  const sweep = setInterval(() => {
    const deadline = Date.now() - o.silentMillis
    for (const [socket, since] of silent) {
      if (spoke(socket) || socket.destroyed) {
        silent.delete(socket)
        continue
      }
      if (since > deadline) break
      silent.delete(socket)
      silentTimeouts++
      socket.destroy()
    }
  }, 1_000)
  sweep.unref()
  server.once("close", () => clearInterval(sweep))

  guards.set(server, {
    stats: () => ({ open, silent: silent.size, maxSockets: o.maxSockets, overLimit, evictedSilent, silentTimeouts })
  })
  return server
}

/**
 * An `http.Server` with the guard installed: pass it to
 * `NodeHttpServer.layer(() => SocketGuard.createServer(options), { port })`.
 * Its header timeouts are checked every second.
 *
 * @example
 * ```ts
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { SocketGuard } from "@sluice/http"
 *
 * const Server = NodeHttpServer.layer(
 *   () => SocketGuard.createServer({ maxSockets: 5_256, silentTimeout: "10 seconds", highWaterMark: 16_384 }),
 *   { port: 8080 }
 * )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const createServer = (options: Options = {}): Http.Server => {
  const o = resolve(options)
  return install(
    Http.createServer({
      highWaterMark: o.highWaterMark,
      headersTimeout: o.headersMillis,
      requestTimeout: Math.max(o.headersMillis, 30_000),
      keepAliveTimeout: o.keepAliveMillis,
      connectionsCheckingInterval: 1_000
    }),
    options
  )
}

/**
 * What the guard of `server` did so far; `undefined` for a server without one.
 *
 * @example
 * ```ts
 * import { SocketGuard } from "@sluice/http"
 *
 * const server = SocketGuard.createServer()
 * const silent = SocketGuard.stats(server)?.silent // 0
 * ```
 *
 * @since 0.2.0
 * @category getters
 */
export const stats = (server: Http.Server): Stats | undefined => guards.get(server)?.stats()
