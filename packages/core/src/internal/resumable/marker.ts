/**
 * The end marker: the entry that closes a resumable stream's record.
 *
 * The record of a stream is a `Log` of its events followed by one marker
 * entry (`event: sluice_end`, data: the `End` as JSON). Readers stop at the
 * first marker and never write it to a client: each attached connection ends
 * with its own frames for that end instead. Because the marker is an entry
 * of the same log, it is ordered with the events: a reader that reaches it
 * has delivered every event before it, whatever the timing, on any node.
 *
 * @internal
 */
import { utf8 } from "../bytes.ts"
import type { End } from "./model.ts"

/** The event type the marker uses; producers may not use it. @internal */
export const markerEvent = "sluice_end"

// After the id line, a marker's frame starts with exactly these bytes.
const prefix = utf8(`event: ${markerEvent}\ndata: `)

/** The marker entry's fields (for `Log.NewEntry`). @internal */
export const fields = (end: End): string => `event: ${markerEvent}\ndata: ${JSON.stringify(end)}\n\n`

// Where the id line of a frame ends (the index after its LF), or -1.
const afterIdLine = (frame: Uint8Array): number => {
  const n = Math.min(frame.length, 4096)
  for (let i = 0; i < n; i++) if (frame[i] === 0x0a) return i + 1
  return -1
}

/** `true` when a recorded frame is an end marker. @internal */
export const isMarker = (frame: Uint8Array): boolean => {
  const start = afterIdLine(frame)
  if (start < 0 || frame.length - start < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (frame[start + i] !== prefix[i]) return false
  return true
}

const decoder = new TextDecoder()

const isEnd = (u: unknown): u is End => {
  if (typeof u !== "object" || u === null) return false
  const v = u as Record<string, unknown>
  switch (v["_tag"]) {
    case "Completed":
    case "Expired":
    case "ProducerLost":
      return true
    case "Failed":
      return typeof v["message"] === "string"
    case "Stopped":
      return typeof v["reason"] === "string" && typeof v["detached"] === "boolean"
    default:
      return false
  }
}

/**
 * The end a marker frame records. A marker written by another version that
 * this one cannot read counts as the producer being lost: the stream is over
 * either way, and the reader must not hang.
 *
 * @internal
 */
export const decode = (frame: Uint8Array): End => {
  const start = afterIdLine(frame) + prefix.length
  let end = frame.length
  while (end > start && (frame[end - 1] === 0x0a || frame[end - 1] === 0x0d)) end--
  try {
    const parsed: unknown = JSON.parse(decoder.decode(frame.subarray(start, end)))
    return isEnd(parsed) ? parsed : { _tag: "ProducerLost" }
  } catch {
    return { _tag: "ProducerLost" }
  }
}
