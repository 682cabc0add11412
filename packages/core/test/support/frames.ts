import { Deferred, Effect, type Latch } from "effect"
import type { Sink } from "../../src/index.ts"

/** One SSE frame as written (fields as text; `comment` for `:` lines). */
export interface Frame {
  readonly id?: string
  readonly event?: string
  readonly data?: string
  readonly retry?: string
  readonly comment?: string
}

/**
 * Splits wire text into frames. Only for output of sluice's own encoder (one
 * space after the colon, LF line ends), which the tests check exactly.
 */
export const parse = (text: string): Array<Frame> =>
  text.split("\n\n").filter((block) => block !== "").map((block) => {
    const frame: Record<string, string> = {}
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        frame["comment"] = line.slice(1).trimStart()
        continue
      }
      const colon = line.indexOf(":")
      const name = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
      frame[name] = name === "data" && frame["data"] !== undefined ? `${frame["data"]}\n${value}` : value
    }
    return frame as Frame
  })

export interface FrameSink {
  readonly sink: Sink.Sink
  /** The chunks as handed to the sink (same objects, not copies). */
  readonly chunks: () => ReadonlyArray<Uint8Array>
  readonly text: () => string
  readonly frames: () => ReadonlyArray<Frame>
  /** Frames that are events (comments excluded). */
  readonly events: () => ReadonlyArray<Frame>
  readonly ids: () => ReadonlyArray<string | undefined>
  /** Waits until at least `n` events (comments excluded) were written. */
  readonly awaitEvents: (n: number) => Effect.Effect<void>
  /** Waits until an event with this id was written. */
  readonly awaitId: (id: string) => Effect.Effect<void>
}

/**
 * A sink that records frames. With `hold`, every write first waits for the
 * latch to be open (a stuck client until the test opens it).
 */
export const frameSink = (options: { readonly hold?: Latch.Latch } = {}): FrameSink => {
  const chunks: Array<Uint8Array> = []
  let text = ""
  let events = 0
  const seenIds = new Set<string>()
  const waiters: Array<{ ready: () => boolean; done: Deferred.Deferred<void> }> = []
  const decoder = new TextDecoder()
  const record = (chunk: Uint8Array) => {
    chunks.push(chunk)
    const piece = decoder.decode(chunk)
    text += piece
    for (const frame of parse(piece)) {
      if (frame.comment !== undefined) continue
      events++
      if (frame.id !== undefined) seenIds.add(frame.id)
    }
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!
      if (w.ready()) {
        waiters.splice(i, 1)
        Deferred.doneUnsafe(w.done, Effect.void)
      }
    }
  }
  const write = (chunk: Uint8Array) => Effect.sync(() => record(chunk))
  const until = (ready: () => boolean) =>
    Effect.suspend(() => {
      if (ready()) return Effect.void
      const done = Deferred.makeUnsafe<void>()
      waiters.push({ ready, done })
      return Deferred.await(done)
    })
  return {
    sink: options.hold === undefined ? write : (chunk) => Effect.andThen(options.hold!.await, write(chunk)),
    chunks: () => chunks,
    text: () => text,
    frames: () => parse(text),
    events: () => parse(text).filter((f) => f.comment === undefined),
    ids: () => parse(text).filter((f) => f.comment === undefined).map((f) => f.id),
    awaitEvents: (n) => until(() => events >= n),
    awaitId: (id) => until(() => seenIds.has(id))
  }
}

/** `[from, from + 1, …, to]`. */
export const range = (from: number, to: number): Array<number> =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => from + k)
