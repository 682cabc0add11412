import { Sink } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as Http from "node:http"
import { Readable } from "node:stream"
import * as Zlib from "node:zlib"

/**
 * The response body of an SSE stream as a Node stream that the HTTP server
 * pipes to the socket, and a sink that writes into it.
 *
 * Returning a stream body (instead of writing to the socket from the handler)
 * keeps the platform in charge of the response: status, headers added by
 * middleware (CORS, …), HTTP/2, and client-abort detection all work as for any
 * other route.
 *
 * @internal
 */
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

// Destroys `stream` if it has not closed `graceMillis` after its end was queued.
const guard = (stream: Readable, graceMillis: number) => {
  if (!Number.isFinite(graceMillis)) return
  const timer = setTimeout(() => {
    if (!stream.destroyed) stream.destroy()
  }, graceMillis)
  timer.unref()
  stream.once("close", () => clearTimeout(timer))
}

// Without a stack trace: it would only show Node's event plumbing, and every
// client that leaves creates one (capturing stacks dominated disconnect costs).
const gone = (detail: string, cause?: unknown) => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new Sink.WriteError({ reason: "closed", detail, ...(cause === undefined ? {} : { cause }) })
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** @internal */
export const plain = (highWaterMark: number): NodeBody => {
  let waiter: ((error?: Sink.WriteError) => void) | undefined
  let closed: Sink.WriteError | undefined
  let ended = false
  const listeners: Array<(error: Sink.WriteError) => void> = []
  const body = new Readable({
    highWaterMark,
    read() {
      const w = waiter
      waiter = undefined
      w?.()
    },
    destroy(error, callback) {
      if (!ended || error) {
        closed = gone("the client closed the stream", error ?? undefined)
        const w = waiter
        waiter = undefined
        w?.(closed)
        for (const f of listeners.splice(0)) f(closed)
      }
      callback(null)
    }
  })
  const write = (chunk: Uint8Array) =>
    Effect.callback<void, Sink.WriteError>((resume) => {
      if (closed !== undefined) return resume(Effect.fail(closed))
      // `push` queues the chunk; `false` means the buffer is above the
      // high-water mark: wait until the socket side reads (backpressure).
      if (body.push(chunk)) return resume(Effect.void)
      waiter = (error) => resume(error === undefined ? Effect.void : Effect.fail(error))
      return Effect.sync(() => {
        waiter = undefined
      })
    })
  // Below the high-water mark a chunk is taken at once: no fiber needed.
  const sink = Sink.withTryWrite(write, (chunk) => {
    if (closed !== undefined || body.readableLength >= highWaterMark) return false
    body.push(chunk)
    return true
  })
  return {
    body,
    sink,
    end: (graceMillis) => {
      if (ended || closed !== undefined) return
      ended = true
      body.push(null)
      guard(body, graceMillis)
    },
    abort: () => {
      if (!body.destroyed) body.destroy()
    },
    discard: () => {
      ended = true
      if (!body.destroyed) body.destroy()
    },
    onGone: (f) => {
      if (closed !== undefined) f(closed)
      else listeners.push(f)
    }
  }
}

/**
 * gzip with a sync flush after every chunk, so compression never holds an
 * event back waiting for more input.
 *
 * @internal
 */
export const gzip = (): NodeBody => {
  let closed: Sink.WriteError | undefined
  let ended = false
  const listeners: Array<(error: Sink.WriteError) => void> = []
  const drainWaiters = new Set<(error?: Sink.WriteError) => void>()
  const body = Zlib.createGzip()
  const onClose = (error?: unknown) => {
    if (closed !== undefined || (ended && error === undefined)) return
    closed = gone("the client closed the stream", error)
    for (const w of drainWaiters) w(closed)
    drainWaiters.clear()
    for (const f of listeners.splice(0)) f(closed)
  }
  body.on("close", () => onClose())
  body.on("error", (error) => onClose(error))
  body.on("drain", () => {
    for (const w of drainWaiters) w()
    drainWaiters.clear()
  })
  const write = (chunk: Uint8Array) =>
    Effect.callback<void, Sink.WriteError>((resume) => {
      if (closed !== undefined) return resume(Effect.fail(closed))
      const ok = body.write(chunk)
      body.flush(Zlib.constants.Z_SYNC_FLUSH)
      if (ok) return resume(Effect.void)
      const waiter = (error?: Sink.WriteError) => resume(error === undefined ? Effect.void : Effect.fail(error))
      drainWaiters.add(waiter)
      return Effect.sync(() => {
        drainWaiters.delete(waiter)
      })
    })
  const sink = Sink.withTryWrite(write, (chunk) => {
    if (closed !== undefined || body.writableNeedDrain) return false
    body.write(chunk)
    body.flush(Zlib.constants.Z_SYNC_FLUSH)
    return true
  })
  return {
    body,
    sink,
    end: (graceMillis) => {
      if (ended || closed !== undefined) return
      ended = true
      body.end()
      guard(body, graceMillis)
    },
    abort: () => {
      if (!body.destroyed) body.destroy()
    },
    discard: () => {
      ended = true
      if (!body.destroyed) body.destroy()
    },
    onGone: (f) => {
      if (closed !== undefined) f(closed)
      else listeners.push(f)
    }
  }
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
  let ready = false
  let ended = false
  let closed: Sink.WriteError | undefined
  let finish: (() => void) | undefined
  const readyWaiters = new Set<() => void>()
  const drainWaiters = new Set<(error?: Sink.WriteError) => void>()
  const listeners: Array<(error: Sink.WriteError) => void> = []

  const onClose = () => {
    if (closed !== undefined || res.writableFinished) return
    closed = gone("the client closed the stream")
    for (const w of drainWaiters) w(closed)
    drainWaiters.clear()
    for (const w of readyWaiters) w()
    readyWaiters.clear()
    for (const f of listeners.splice(0)) f(closed)
  }
  res.once("close", onClose)
  res.on("drain", () => {
    const waiters = [...drainWaiters]
    drainWaiters.clear()
    for (const w of waiters) w()
  })

  const body = Stream.fromEffect(Effect.callback<void>((resume) => {
    ready = true
    const waiters = [...readyWaiters]
    readyWaiters.clear()
    for (const w of waiters) w()
    if (ended) return resume(Effect.void)
    finish = () => resume(Effect.void)
    return Effect.sync(() => {
      finish = undefined
    })
  })).pipe(Stream.drain) as Stream.Stream<Uint8Array>

  const awaitReady = Effect.callback<void>((resume) => {
    if (ready || closed !== undefined) return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    readyWaiters.add(waiter)
    return Effect.sync(() => {
      readyWaiters.delete(waiter)
    })
  })

  const writeNow = (chunk: Uint8Array) =>
    Effect.callback<void, Sink.WriteError>((resume) => {
      if (closed !== undefined) return resume(Effect.fail(closed))
      if (res.write(chunk)) return resume(Effect.void)
      // Above the socket's high-water mark: wait for it to drain (backpressure).
      const waiter = (error?: Sink.WriteError) => resume(error === undefined ? Effect.void : Effect.fail(error))
      drainWaiters.add(waiter)
      return Effect.sync(() => {
        drainWaiters.delete(waiter)
      })
    })

  const sink = Sink.withTryWrite(
    (chunk) => ready ? writeNow(chunk) : Effect.andThen(awaitReady, writeNow(chunk)),
    (chunk) => {
      if (!ready || closed !== undefined || res.writableNeedDrain) return false
      res.write(chunk)
      return true
    }
  )

  return {
    body,
    sink,
    end: (graceMillis) => {
      if (ended || closed !== undefined) return
      ended = true
      finish?.()
      if (!Number.isFinite(graceMillis)) return
      const timer = setTimeout(() => {
        if (!res.writableFinished) res.destroy()
      }, graceMillis)
      timer.unref()
      res.once("close", () => clearTimeout(timer))
    },
    abort: () => {
      if (!res.destroyed) res.destroy()
    },
    discard: () => {
      ended = true
      res.off("close", onClose)
    },
    onGone: (f) => {
      if (closed !== undefined) f(closed)
      else listeners.push(f)
    }
  }
}
