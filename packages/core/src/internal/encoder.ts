/**
 * The SSE encoder: validates a frame and writes its wire text and bytes
 * (`id:`, `event:`, one `data:` line per line of data, `retry:`, comments).
 * A field the wire cannot carry (CR, LF or NUL in `id`/`event`, a lone
 * surrogate, a `retry` that is not a non-negative integer) is an
 * `InvalidEventError` before any byte is produced. `SseEncoder`, connections,
 * hubs and registries all encode through it.
 *
 * @internal
 */
import { InvalidEventError } from "../SseEvent.ts"
import type { Comment, Event, Frame, Retry } from "../SseEvent.ts"
import { utf8 } from "./bytes.ts"

const lineBreak = /\r\n|\r|\n/
const forbiddenInField = /[\r\n\0]/

const checkText = (field: "data" | "comment" | "id" | "event", value: string): InvalidEventError | undefined =>
  value.isWellFormed()
    ? undefined
    : new InvalidEventError({ field, reason: "contains a lone UTF-16 surrogate, which UTF-8 cannot carry" })

const checkField = (field: "id" | "event", value: string): InvalidEventError | undefined => {
  if (forbiddenInField.test(value)) {
    return new InvalidEventError({
      field,
      reason: `must not contain CR, LF or NUL (got ${JSON.stringify(value.slice(0, 64))})`
    })
  }
  return checkText(field, value)
}

const checkRetry = (millis: number): InvalidEventError | undefined =>
  Number.isSafeInteger(millis) && millis >= 0
    ? undefined
    : new InvalidEventError({ field: "retry", reason: `must be a non-negative integer (got ${String(millis)})` })

// Each line of a multi-line value becomes its own `name: line` field.
const multiline = (name: string, value: string): string => {
  if (value.indexOf("\n") === -1 && value.indexOf("\r") === -1) {
    return value === "" ? `${name}\n` : `${name} ${value}\n`
  }
  let out = ""
  for (const line of value.split(lineBreak)) out += line === "" ? `${name}\n` : `${name} ${line}\n`
  return out
}

/** Why `id` cannot be an event id, if it cannot. @internal */
export const idError = (id: string): InvalidEventError | undefined => checkField("id", id)

/**
 * An event's wire text from its fields (what `eventText` does, for callers
 * that have the fields and no `Event`).
 *
 * @internal
 */
export const eventFieldsText = (
  data: unknown,
  event: string | undefined,
  id: string | undefined,
  retry: number | undefined
): string | InvalidEventError => {
  let out = ""
  if (id !== undefined) {
    const bad = checkField("id", id)
    if (bad) return bad
    out += id === "" ? "id:\n" : `id: ${id}\n`
  }
  if (event !== undefined) {
    const bad = checkField("event", event)
    if (bad) return bad
    out += event === "" ? "event:\n" : `event: ${event}\n`
  }
  if (retry !== undefined) {
    const bad = checkRetry(retry)
    if (bad) return bad
    out += `retry: ${retry}\n`
  }
  if (typeof data !== "string") {
    return new InvalidEventError({ field: "data", reason: `must be a string (got ${typeof data})` })
  }
  const bad = checkText("data", data)
  if (bad) return bad
  return out + multiline("data:", data) + "\n"
}

const eventText = (e: Event): string | InvalidEventError => eventFieldsText(e.data, e.event, e.id, e.retry)

const commentText = (c: Comment): string | InvalidEventError =>
  checkText("comment", c.text) ?? `${multiline(":", c.text)}\n`

const retryText = (r: Retry): string | InvalidEventError => checkRetry(r.millis) ?? `retry: ${r.millis}\n\n`

/** @internal */
export const frameText = (frame: Frame): string | InvalidEventError => {
  switch (frame._tag) {
    case "Event":
      return eventText(frame)
    case "Comment":
      return commentText(frame)
    case "Retry":
      return retryText(frame)
  }
}

/** @internal */
export const frameBytes = (frame: Frame): Uint8Array | InvalidEventError => {
  const text = frameText(frame)
  return typeof text === "string" ? utf8(text) : text
}
