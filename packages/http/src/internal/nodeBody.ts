/**
 * The response body of an SSE stream and the sink that writes into it.
 *
 * The handler returns a normal response, which keeps the platform in charge
 * of it: status, headers added by middleware (CORS, …), HTTP/2, and
 * client-abort detection work as for any other route. Three bodies:
 * - {@link direct} (Node responses, the default): frames go straight to
 *   `res.write`; the platform writes the head of an empty response, and the
 *   stream goes on without the request's fiber;
 * - {@link gzip}: a gzip stream the platform pipes to the socket;
 * - {@link plain}: a Node `Readable` the platform pipes (other platforms).
 *
 * @internal
 */
import { Sink } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Http from "node:http"
import { Readable, type Stream as NodeStream } from "node:stream"
import * as Zlib from "node:zlib"

/** @internal */
export interface NodeBody {
  /** What the platform pipes; `undefined` for a body that writes to the response itself (see {@link direct}). */
  readonly body: Readable | undefined
  readonly sink: Sink.Sink
  /**
   * Ends the body after everything written so far. If the client has not
   * taken it all within `graceMillis`, the body is destroyed (a client that
   * stopped reading must not hold the response open forever).
   */
  readonly end: (graceMillis: number) => void
  /** Destroys the body at once: the response is cut. */
  readonly abort: () => void
  /** The body will not be used (the request was answered otherwise): release it without touching the response. */
  readonly discard: () => void
  /** Called once when the consumer side goes away before `end`. */
  readonly onGone: (client: Client) => void
  /** The request's end no longer ends the stream: the platform wrote the head and let go (`direct` only). */
  readonly detached: boolean
  /** The route answers now (`direct`: with an empty `200` whose head starts the stream). */
  readonly arm: () => void
}

// Without a stack trace: it would only show Node's event plumbing, and every
// client that leaves creates one (capturing stacks dominated disconnect costs).
/** @internal */
export const goneError = (cause?: unknown, detail = "the client closed the stream"): Sink.WriteError => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new Sink.WriteError({
      reason: "closed",
      detail,
      ...(cause === undefined ? {} : { cause })
    })
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** Who learns that the client is gone (a connection: `Connection.lostUnsafe`). @internal */
export interface Client {
  readonly lostUnsafe: (error: Sink.WriteError) => unknown
}

/**
 * What every body tracks: whether it ended or its client is gone, the writes
 * waiting for room, and who wants to know when the client goes.
 */
class Life {
  ended = false
  closed: Sink.WriteError | undefined = undefined
  // Made on first use: most connections never wait for the socket.
  private waiters: Set<(error?: Sink.WriteError) => void> | undefined = undefined
  private client: Client | undefined = undefined

  /** The client went away: waiting writes fail, listeners learn it, once. */
  gone(cause?: unknown) {
    if (this.closed !== undefined) return
    const closed = goneError(cause)
    this.closed = closed
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters !== undefined) {
      for (const w of waiters) w(closed)
    }
    const client = this.client
    this.client = undefined
    client?.lostUnsafe(closed)
  }

  /** The transport took what was waiting: waiting writes go on. */
  room() {
    const waiters = this.waiters
    this.waiters = undefined
    if (waiters !== undefined) {
      for (const w of waiters) w()
    }
  }

  /** Waits for `room` (or fails once the client is gone). */
  waitForRoom(resume: (effect: Effect.Effect<void, Sink.WriteError>) => void): Effect.Effect<void> {
    const waiter = (error?: Sink.WriteError) => resume(error === undefined ? Effect.void : Effect.fail(error))
    ;(this.waiters ??= new Set()).add(waiter)
    return Effect.sync(() => {
      this.waiters?.delete(waiter)
    })
  }

  onGone(client: Client) {
    if (this.closed !== undefined) client.lostUnsafe(this.closed)
    else this.client = client
  }
}

// Destroys `stream` if it has not closed `graceMillis` after its end was queued.
const guard = (stream: NodeStream & { destroyed: boolean; destroy(): void }, graceMillis: number) => {
  if (!Number.isFinite(graceMillis)) return
  const timer = setTimeout(() => {
    if (!stream.destroyed) stream.destroy()
  }, graceMillis)
  timer.unref()
  stream.once("close", () => clearTimeout(timer))
}

// The handle of a body the platform pipes (plain, gzip).
const piped = (
  body: Readable,
  life: Life,
  sink: Sink.Sink,
  finish: () => void
): NodeBody => ({
  body,
  sink,
  detached: false,
  arm: () => {},
  end: (graceMillis) => {
    if (life.ended || life.closed !== undefined) return
    life.ended = true
    finish()
    guard(body, graceMillis)
  },
  abort: () => {
    if (!body.destroyed) body.destroy()
  },
  discard: () => {
    life.ended = true
    if (!body.destroyed) body.destroy()
  },
  onGone: (client) => life.onGone(client)
})

/** @internal */
export const plain = (highWaterMark: number): NodeBody => {
  const life = new Life()
  const body = new Readable({
    highWaterMark,
    read() {
      life.room()
    },
    destroy(error, callback) {
      if (!life.ended || error) life.gone(error ?? undefined)
      callback(null)
    }
  })
  const write = (chunk: Uint8Array) =>
    Effect.callback<void, Sink.WriteError>((resume) => {
      if (life.closed !== undefined) return resume(Effect.fail(life.closed))
      // `push` queues the chunk; `false` means the buffer is above the
      // high-water mark: wait until the socket side reads (backpressure).
      if (body.push(chunk)) return resume(Effect.void)
      return life.waitForRoom(resume)
    })
  // Below the high-water mark a chunk is taken at once: no fiber needed.
  const sink = Sink.withTryWrite(write, (chunk) => {
    if (life.closed !== undefined || body.readableLength >= highWaterMark) return false
    body.push(chunk)
    return true
  })
  return piped(body, life, sink, () => body.push(null))
}

/**
 * gzip with a sync flush after every chunk, so compression never holds an
 * event back waiting for more input.
 *
 * @internal
 */
export const gzip = (): NodeBody => {
  const life = new Life()
  const body = Zlib.createGzip()
  // The gzip header at once, so that the response head goes out before the
  // first event (see `direct`).
  body.flush(Zlib.constants.Z_SYNC_FLUSH)
  body.on("close", () => {
    if (!life.ended) life.gone()
  })
  body.on("error", (error) => life.gone(error))
  body.on("drain", () => life.room())
  const write = (chunk: Uint8Array) =>
    Effect.callback<void, Sink.WriteError>((resume) => {
      if (life.closed !== undefined) return resume(Effect.fail(life.closed))
      const ok = body.write(chunk)
      body.flush(Zlib.constants.Z_SYNC_FLUSH)
      return ok ? resume(Effect.void) : life.waitForRoom(resume)
    })
  const sink = Sink.withTryWrite(write, (chunk) => {
    if (life.closed !== undefined || body.writableNeedDrain) return false
    body.write(chunk)
    body.flush(Zlib.constants.Z_SYNC_FLUSH)
    return true
  })
  return piped(body, life, sink, () => body.end())
}

/**
 * Writes straight to the Node response. The route answers with an empty
 * `200` (`HttpServerResponse.empty`), so the platform writes the head (with
 * whatever middleware added) and then calls `res.end()`: that one call is
 * where the request's part ends and the stream's begins. It is skipped, and
 * the stream goes on without the request's fiber, written by its connection,
 * until the connection ends it. Writes made before the head wait here (up to
 * a high-water mark) and go out with it.
 *
 * Why: the platform runs a request's fiber, with its scope, context and
 * middleware frames, for as long as the response body lasts. An SSE stream
 * lasts hours; that fiber was most of a connection's memory and of its
 * connect and disconnect cost. The request's fiber still runs the router and
 * middleware (authorization, CORS, limits) for every stream, and a response
 * a middleware put in place of the stream is sent as it is.
 *
 * @internal
 */
export const direct = (res: Http.ServerResponse, highWaterMark: number): NodeBody => new Direct(res, highWaterMark)

// A response's stream, on the response itself: the response's listeners and
// its `end` are then functions shared by every stream (no closure each), and
// the two properties added to every such response, in the same order, share
// one shape.
const streamOf = Symbol.for("@sluice/http/stream")

interface Carrying {
  [streamOf]: Direct | undefined
}

const responseEnd = Http.ServerResponse.prototype.end

// The response's `end` while a stream waits for its head: the platform's
// `end()` right after writing the head of the stream's `200` is skipped, and
// the stream takes over. Any other call is the response's own `end`.
function endOrDetach(this: Http.ServerResponse & Carrying, ...args: Array<unknown>) {
  const body = this[streamOf]
  if (body !== undefined && body.armed) {
    body.armed = false
    if (args[0] === undefined && isStreamHead(this) && body.detach()) return this
  }
  return responseEnd.apply(this, args as Parameters<typeof responseEnd>)
}

function onResponseClose(this: Http.ServerResponse & Carrying) {
  this[streamOf]?.responseClosed()
}

function onResponseDrain(this: Http.ServerResponse & Carrying) {
  this[streamOf]?.room()
}

// The head just written is the stream's (a middleware may have answered otherwise).
const isStreamHead = (res: Http.ServerResponse): boolean => {
  const head = (res as unknown as { _header?: unknown })._header
  return res.statusCode === 200 && (typeof head !== "string" || head.includes("text/event-stream"))
}

class Direct extends Life implements NodeBody {
  readonly body = undefined
  readonly sink: Sink.Sink
  private readonly res: Http.ServerResponse
  private readonly highWaterMark: number
  // The head is out: writes go to the response.
  private ready = false
  private wrote = false
  // Written before the head, in order (bounded by the high-water mark).
  private pending: Array<Uint8Array> | undefined = undefined
  private pendingBytes = 0
  private readyWaiters: Set<() => void> | undefined = undefined

  /** The platform's next `end()` is the stream's head (see `arm`). */
  armed = false

  constructor(res: Http.ServerResponse, highWaterMark: number) {
    super()
    this.res = res
    this.highWaterMark = highWaterMark
    ;(res as Http.ServerResponse & Carrying)[streamOf] = this
    // `on`, not `once` (a wrapper per listener): `closed` acts once anyway.
    res.on("close", onResponseClose)
    res.on("drain", onResponseDrain)
    // `Sink.withTryWrite`, without its wrapper around `write`.
    this.sink = Object.assign((chunk: Uint8Array) => this.write(chunk), {
      tryWrite: (chunk: Uint8Array) => this.tryWrite(chunk)
    })
  }

  private write(chunk: Uint8Array): Effect.Effect<void, Sink.WriteError> {
    return this.ready ? this.writeNow(chunk) : Effect.andThen(this.awaitReady(), this.writeNow(chunk))
  }

  get detached(): boolean {
    return this.ready
  }

  /** The route answers with the stream's empty `200`: its head is where the stream starts. */
  arm(): void {
    ;(this.res as unknown as { end: unknown }).end = endOrDetach
    this.armed = true
  }

  /** The head is written: pending writes go out. `false` when the stream is over already. */
  detach(): boolean {
    const res = this.res
    this.ready = true
    const pending = this.pending
    this.pending = undefined
    if (pending !== undefined && !res.destroyed) {
      this.wrote = true
      res.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending, this.pendingBytes))
    }
    this.wakeReady()
    if (this.ended || this.closed !== undefined || res.destroyed) return false
    // Node sends the head with the first write. A stream with nothing to say
    // yet must still look open to its client, its proxies and EventSource's
    // `open`: if nothing was written by the next turn, the head goes alone.
    if (!this.wrote) setImmediate(() => this.flushHeadIfSilent())
    return true
  }

  private flushHeadIfSilent(): void {
    const res = this.res
    if (!this.wrote && !res.destroyed && !res.writableEnded) res.flushHeaders()
  }

  /** The response closed. */
  responseClosed(): void {
    if (this.res.writableFinished) return
    this.gone()
    this.wakeReady()
  }

  private tryWrite(chunk: Uint8Array): boolean {
    if (this.closed !== undefined) return false
    if (!this.ready) {
      // Before the head: kept, in order, while they fit under the mark.
      if (this.pendingBytes + chunk.byteLength > this.highWaterMark && this.pending !== undefined) return false
      ;(this.pending ??= []).push(chunk)
      this.pendingBytes += chunk.byteLength
      return true
    }
    if (this.res.writableNeedDrain) return false
    this.wrote = true
    this.res.write(chunk)
    return true
  }

  private writeNow(chunk: Uint8Array): Effect.Effect<void, Sink.WriteError> {
    return Effect.callback<void, Sink.WriteError>((resume) => {
      if (this.closed !== undefined) return resume(Effect.fail(this.closed))
      this.wrote = true
      // Above the socket's high-water mark: wait for it to drain (backpressure).
      return this.res.write(chunk) ? resume(Effect.void) : this.waitForRoom(resume)
    })
  }

  private awaitReady(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.ready || this.closed !== undefined) return resume(Effect.void)
      const waiter = () => resume(Effect.void)
      ;(this.readyWaiters ??= new Set()).add(waiter)
      return Effect.sync(() => {
        this.readyWaiters?.delete(waiter)
      })
    })
  }

  private wakeReady(): void {
    const waiters = this.readyWaiters
    this.readyWaiters = undefined
    if (waiters !== undefined) {
      for (const w of waiters) w()
    }
  }

  end(graceMillis: number): void {
    if (this.ended || this.closed !== undefined) return
    this.ended = true
    // Before the head, the platform ends the response after writing it.
    if (!this.ready) return
    this.res.end()
    guard(this.res, graceMillis)
  }

  abort(): void {
    if (!this.res.destroyed) this.res.destroy()
  }

  discard(): void {
    this.ended = true
    this.pending = undefined
    const res = this.res
    res.off("close", onResponseClose)
    res.off("drain", onResponseDrain)
    ;(res as Http.ServerResponse & Carrying)[streamOf] = undefined
  }
}
