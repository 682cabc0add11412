/**
 * Checks of what applications and publishers send: shapes, unknown fields,
 * event fields the wire cannot carry, sizes. Each refusal names the field.
 *
 * @internal
 */
import { SseEncoder, SseEvent } from "@sluice/core"
import * as Result from "effect/Result"
import { type Refusal, refusal } from "./problem.ts"

/** A plain JSON object, or `undefined`. @internal */
export const asObject = (u: unknown): Record<string, unknown> | undefined =>
  typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : undefined

/** Refuses fields outside `allowed`. @internal */
export const onlyFields = (
  o: Record<string, unknown>,
  allowed: ReadonlyArray<string>,
  where: string
): Refusal | undefined => {
  for (const name of Object.keys(o)) {
    if (!allowed.includes(name)) {
      return refusal(
        "unknown_field",
        400,
        `${where}: unknown field ${JSON.stringify(name)} (allowed: ${allowed.join(", ")})`
      )
    }
  }
  return undefined
}

/** Event data: a string as is, any other JSON value serialized. @internal */
export const dataText = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value))

/** An optional string field. @internal */
export const optionalString = (
  o: Record<string, unknown>,
  name: string,
  where: string
): string | undefined | Refusal => {
  const v = o[name]
  if (v === undefined || v === null) return undefined
  return typeof v === "string" ? v : refusal("invalid_field", 400, `${where}: ${name} must be a string`)
}

/**
 * An SSE event checked for the wire: `event` and `id` without CR, LF or
 * NUL, at most `maxBytes` encoded.
 *
 * @internal
 */
export const checkedEvent = (
  fields: { readonly event: string | undefined; readonly data: string; readonly id: string | undefined },
  where: string,
  maxBytes: number
): SseEvent.Event | Refusal => {
  if (fields.data.length > maxBytes) {
    return refusal("too_large", 413, `${where}: the event is larger than ${maxBytes} bytes`)
  }
  const event = SseEvent.make({ event: fields.event, data: fields.data, id: fields.id })
  const bytes = SseEncoder.encodeResult(event)
  if (Result.isFailure(bytes)) return refusal("invalid_event", 400, `${where}: ${bytes.failure.message}`)
  if (bytes.success.byteLength > maxBytes) {
    return refusal("too_large", 413, `${where}: the event is larger than ${maxBytes} bytes`)
  }
  return event
}

/** A close reason: a word that goes on the wire. @internal */
export const reasonPattern = /^[A-Za-z0-9_.:-]{1,128}$/

/** A topic name: 1 to 512 characters, no control characters. @internal */
export const checkTopic = (topic: unknown, where: string): string | Refusal => {
  if (typeof topic !== "string" || topic === "") {
    return refusal("invalid_topic", 400, `${where}: a topic must be a non-empty string`)
  }
  if (topic.length > 512) return refusal("invalid_topic", 400, `${where}: a topic is at most 512 characters`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(topic)) {
    return refusal("invalid_topic", 400, `${where}: a topic cannot contain control characters`)
  }
  return topic
}
