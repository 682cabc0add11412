/**
 * Publish validation: an event checked and written as text before it touches
 * the log or any subscriber, or the typed reason it is refused. Runs once per
 * event: no wrapper object but the result.
 *
 * - the type must be in the hub's allowlist (`message` for events without one);
 * - data longer than `maxEventBytes` UTF-16 units is refused without being
 *   encoded (UTF-8 never takes fewer bytes);
 * - the fields must be valid SSE (the encoder's checks), the publisher's id too;
 * - the whole frame, id line included, must fit `maxEventBytes`: measured
 *   exactly when the log's next id is known (a log in this process), against
 *   the longest id the log can assign otherwise.
 *
 * Every refusal is counted in `sluice_hub_publish_rejected_total{reason}`.
 *
 * @internal
 */
import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import type * as Hub from "../../Hub.ts"
import type { InvalidEventError } from "../../SseEvent.ts"
import { utf8Length } from "../bytes.ts"
import { eventFieldsText, idError } from "../encoder.ts"
import * as ids from "../log/ids.ts"
import * as metrics from "../metrics.ts"
import type { Config } from "./config.ts"
import { EventNotAllowedError, PayloadTooLargeError, type UnserializableDataError } from "./errors.ts"

/** An event ready for the log: its fields as text, and the publisher's id. @internal */
export interface Prepared {
  readonly fields: string
  readonly id: string | undefined
}

/** The event, or why it is refused (errors have a `_tag`, a `Prepared` has none). @internal */
export const prepare = (
  cfg: Config,
  input: Hub.EventInput
): Prepared | EventNotAllowedError | PayloadTooLargeError | InvalidEventError => {
  // Read every field once: what is published cannot change afterwards.
  const { data, event, id, retry } = input
  if (cfg.allowed !== undefined) {
    const type = event === undefined || event === "" ? "message" : event
    if (!cfg.allowed.has(type)) return new EventNotAllowedError({ event: type })
  }
  if (typeof data === "string" && data.length > cfg.maxEventBytes) {
    return new PayloadTooLargeError({ size: data.length, max: cfg.maxEventBytes })
  }
  if (id !== undefined) {
    const bad = idError(id)
    if (bad !== undefined) return bad
  }
  const fields = eventFieldsText(data, event, undefined, retry)
  if (typeof fields !== "string") return fields
  return { fields, id }
}

// "id: " + "\n"
const idLineChars = 5
// "-" and the digits of the largest safe integer
const longestSeqChars = 17

/**
 * Whether the frame is too large. `nextSeq` is the sequence number the log
 * will assign (`undefined`: not known, measure against the longest). Exact
 * measuring happens only for frames that could be too large (UTF-8 takes at
 * most 3 bytes per UTF-16 unit).
 *
 * @internal
 */
export const oversize = (
  cfg: Config,
  p: Prepared,
  epoch: string,
  nextSeq: () => number | undefined
): PayloadTooLargeError | undefined => {
  const idChars = p.id?.length ?? epoch.length + longestSeqChars
  if ((p.fields.length + idLineChars + idChars) * 3 <= cfg.maxEventBytes) return undefined
  let size: number
  if (p.id !== undefined) {
    size = utf8Length(ids.frameText(p.id, p.fields))
  } else {
    const seq = nextSeq()
    size = utf8Length(p.fields) + idLineChars + epoch.length +
      (seq === undefined ? longestSeqChars : String(seq).length + 1)
  }
  return size > cfg.maxEventBytes ? new PayloadTooLargeError({ size, max: cfg.maxEventBytes }) : undefined
}

const rejected = {
  tooLarge: Metric.withAttributes(metrics.hubPublishRejected, { reason: "too-large" }),
  notAllowed: Metric.withAttributes(metrics.hubPublishRejected, { reason: "not-allowed" }),
  invalid: Metric.withAttributes(metrics.hubPublishRejected, { reason: "invalid" }),
  unserializable: Metric.withAttributes(metrics.hubPublishRejected, { reason: "unserializable" })
} as const

/** Counts a refused publish by reason (a log failure is not a refusal). @internal */
export const countRejection = (
  context: Context.Context<never>,
  error: Hub.PublishError | UnserializableDataError
): void => {
  const metric = error._tag === "PayloadTooLargeError"
    ? rejected.tooLarge
    : error._tag === "EventNotAllowedError"
    ? rejected.notAllowed
    : error._tag === "UnserializableDataError"
    ? rejected.unserializable
    : error._tag === "InvalidEventError"
    ? rejected.invalid
    : undefined
  metric?.updateUnsafe(1, context)
}
