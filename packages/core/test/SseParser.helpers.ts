// Shared helpers for the parser tests: run the push parser over chunks and collect what it saw.
import { SseEvent, SseParser } from "../src/index.ts"

export interface Seen {
  readonly frames: Array<SseEvent.Frame>
  readonly error: { readonly tag: string; readonly rule: string; readonly line: number } | undefined
  readonly lastEventId: string
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Feeds `chunks`, then ends the stream; frames in order, the error if any. */
export const collect = (chunks: ReadonlyArray<Uint8Array | string>, options: SseParser.Options = {}): Seen => {
  const frames: Array<SseEvent.Frame> = []
  let error: Seen["error"]
  const parser = SseParser.makeParser({
    ...options,
    onEvent: (e) => frames.push(e),
    onRetry: (millis) => frames.push(SseEvent.retry(millis)),
    onComment: (text) => frames.push(SseEvent.comment(text)),
    onError: (e) => {
      error = { tag: e._tag, rule: e._tag === "SseParseError" ? e.rule : e.limit, line: e.line }
    }
  })
  for (const chunk of chunks) parser.feed(chunk)
  parser.end() // keeps the last event ID for the next stream
  return { frames, error, lastEventId: parser.lastEventId }
}

/** Splits `bytes` at the given (sorted, deduplicated) offsets. */
export const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let from = 0
  for (const cut of cuts) {
    if (cut > from && cut < bytes.length) {
      out.push(bytes.subarray(from, cut))
      from = cut
    }
  }
  out.push(bytes.subarray(from))
  return out
}

/** One chunk per byte. */
export const bytewise = (bytes: Uint8Array): Array<Uint8Array> => Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))
