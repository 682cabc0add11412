/**
 * The response body of an SSE stream and the sink that writes into it.
 *
 * The handler returns a normal response, which keeps the platform in charge
 * of it: status, headers added by middleware (CORS, …), HTTP/2, and
 * client-abort detection work as for any other route. Three bodies:
 * - {@link direct} (Node responses, the default): frames go straight to
 *   `res.write`, the platform's body is a `Stream` marking the lifetime;
 * - {@link gzip}: a gzip stream the platform pipes to the socket;
 * - {@link plain}: a Node `Readable` the platform pipes (other platforms).
 *
 * @internal
 */
import { Sink } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Http from "node:http"
import { Readable, type Stream as NodeStream } from "node:stream"
import * as Zlib from "node:zlib"

/** @internal */
export interface NodeBody {
  /** What the platform sends: a Node stream to pipe, or a Stream that only marks the body's lifetime. */
  readonly body: Readable | Stream.Stream<Uint8Array>
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
  readonly onGone: (f: (error: Sink.WriteError) => void) => void
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

/**
 * What every body tracks: whether it ended or its client is gone, the writes
 * waiting for room, and who wants to know when the client goes.
 */
class Life {
  ended = false
  closed: Sink.WriteError | undefined = undefined
  // Made on first use: most connections never wait for the socket.
  private waiters: Set<(error?: Sink.WriteError) => void> | undefined = undefined
  private readonly listeners: Array<(error: Sink.WriteError) => void> = []

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
    for (const f of this.listeners.splice(0)) f(closed)
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

  onGone(f: (error: Sink.WriteError) => void) {
    if (this.closed !== undefined) f(this.closed)
    else this.listeners.push(f)
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
  onGone: (f) => life.onGone(f)
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
 * Writes straight to the Node response, which the platform still owns: it
 * writes the head (with whatever middleware added), and its body is a
 * `Stream` that emits nothing and ends when this body ends, so the platform
 * then ends the response; a client that leaves interrupts that stream, the
 * cheapest way out for the platform. Writes start once the platform pulls
 * the stream (the head is out by then).
 *
 * @internal
 */
export const direct = (res: Http.ServerResponse): NodeBody => {
  const life = new Life()
  let ready = false
  let wrote = false
  let finish: (() => void) | undefined
  // Made on first use: only writes before the response starts wait here.
  let readyWaiters: Set<() => void> | undefined
  const wakeReady = () => {
    const waiters = readyWaiters
    readyWaiters = undefined
    if (waiters !== undefined) {
      for (const w of waiters) w()
    }
  }

  const onClose = () => {
    if (res.writableFinished) return
    life.gone()
    wakeReady()
  }
  res.once("close", onClose)
  res.on("drain", () => life.room())

  const body = Stream.fromEffect(Effect.callback<void>((resume) => {
    ready = true
    wakeReady()
    // Node sends the head with the first write. A stream with nothing to say
    // yet (no preamble) must still look open to its client, its proxies and
    // EventSource's `open`: if nothing was written by the next turn of the
    // event loop, the head goes out alone. (Usually the preamble has gone by
    // then, with the head, in one write.)
    setImmediate(() => {
      if (!wrote && !res.destroyed && !res.writableEnded) res.flushHeaders()
    })
    if (life.ended) return resume(Effect.void)
    finish = () => resume(Effect.void)
    return Effect.sync(() => {
      finish = undefined
    })
  })).pipe(Stream.drain) as Stream.Stream<Uint8Array>

  const awaitReady = Effect.callback<void>((resume) => {
    if (ready || life.closed !== undefined) return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    ;(readyWaiters ??= new Set()).add(waiter)
    return Effect.sync(() => {
      readyWaiters?.delete(waiter)
    })
  })

  const writeNow = (chunk: Uint8Array) =>
    Effect.callback<void, Sink.WriteError>((resume) => {
      if (life.closed !== undefined) return resume(Effect.fail(life.closed))
      wrote = true
      // Above the socket's high-water mark: wait for it to drain (backpressure).
      return res.write(chunk) ? resume(Effect.void) : life.waitForRoom(resume)
    })

  const sink = Sink.withTryWrite(
    (chunk) => ready ? writeNow(chunk) : Effect.andThen(awaitReady, writeNow(chunk)),
    (chunk) => {
      if (!ready || life.closed !== undefined || res.writableNeedDrain) return false
      wrote = true
      res.write(chunk)
      return true
    }
  )

  return {
    body,
    sink,
    end: (graceMillis) => {
      if (life.ended || life.closed !== undefined) return
      life.ended = true
      finish?.()
      guard(res, graceMillis)
    },
    abort: () => {
      if (!res.destroyed) res.destroy()
    },
    discard: () => {
      life.ended = true
      res.off("close", onClose)
    },
    onGone: (f) => life.onGone(f)
  }
}
