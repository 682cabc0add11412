/**
 * The contract every benchmarked server implements.
 *
 * A peer is one file in `bench/http/peers/` whose name is the peer's name and which exports
 * `peer: Peer`. The harness runs each peer in its own server process (`server.ts`), drives its
 * `publish` hook from a common publisher, and measures memory, CPU and handles itself, so a
 * peer only has to serve SSE and broadcast.
 */

/** A started server. */
export interface PeerServer {
  /** The TCP port the server listens on (bound to 127.0.0.1, port 0 asked). */
  readonly port: number
  /**
   * Broadcasts one event to every client currently subscribed on `GET /events`, as the SSE
   * event `id: <id>` / `data: <data>` of type `message` (`data` is one line of ASCII text).
   * The harness calls it many times in a row (a burst) and then yields to the event loop, so
   * a peer may batch the events of one burst. It may return a promise, which is awaited.
   */
  readonly publish: (id: string, data: string) => void | Promise<void>
  /** How many subscribers the peer currently holds, as the library itself counts them. */
  readonly subscribers: () => number
}

/** How a peer is started. */
export interface StartOptions {
  /** The port to listen on (a restarted server takes its predecessor's); default 0 (any). */
  readonly port?: number | undefined
}

/** A peer: a server under test. */
export interface Peer {
  /** One line saying what is measured: library, version, how it fans out. */
  readonly description: string
  /** Starts the server on 127.0.0.1 (port 0 unless told), and resolves once it listens. */
  readonly start: (options?: StartOptions) => Promise<PeerServer>
}

/**
 * Heartbeat comments, where a peer sends them itself: every connected client gets `:` every
 * 15 s (sluice's and better-sse's default interval), so that holding connections costs the
 * same kind of work everywhere.
 */
export const heartbeatMs = 15_000

/** The only route every peer serves. */
export const eventsPath = "/events"

/** Headers every peer should send with its event stream (the libraries' defaults may add more). */
export const sseHeaders = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  "x-accel-buffering": "no"
} as const
