/**
 * The SSE frame model: what a server can put on the wire of a
 * `text/event-stream` response.
 *
 * A frame is one of:
 * - an {@link Event} (`id`, `event` type, `data`, and an optional `retry` hint),
 * - a {@link Comment} (ignored by clients; used for heartbeats that keep
 *   proxies and idle timers from cutting a quiet stream),
 * - a {@link Retry} hint on its own (sets the client's reconnection delay
 *   without dispatching an event).
 *
 * Frames are plain immutable values. They are validated when they are encoded
 * (see `SseEncoder`), which fails with {@link InvalidEventError} for anything the
 * wire format cannot carry safely.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * A message event.
 *
 * - `data` may contain any line breaks (`\n`, `\r\n`, `\r`); the encoder splits
 *   it into several `data:` lines and the client joins them with `\n`.
 * - `event` is the event type (`"message"` when omitted). It must not contain
 *   CR, LF or NUL.
 * - `id` becomes the client's last event id (sent back as `Last-Event-ID` on
 *   reconnect). It must not contain CR, LF or NUL.
 * - `retry` asks the client to wait that many milliseconds before reconnecting.
 *
 * @since 0.1.0
 * @category models
 */
export interface Event {
  readonly _tag: "Event"
  readonly data: string
  readonly event?: string | undefined
  readonly id?: string | undefined
  readonly retry?: number | undefined
}

/**
 * A comment line (`: text`). Clients ignore comments; servers send them as
 * heartbeats. Line breaks in `text` produce several comment lines.
 *
 * @since 0.1.0
 * @category models
 */
export interface Comment {
  readonly _tag: "Comment"
  readonly text: string
}

/**
 * A stand-alone `retry:` field: sets the client's reconnection delay
 * (milliseconds, a non-negative integer) without dispatching an event.
 *
 * @since 0.1.0
 * @category models
 */
export interface Retry {
  readonly _tag: "Retry"
  readonly millis: number
}

/**
 * Anything that can be written to an SSE stream.
 *
 * @since 0.1.0
 * @category models
 */
export type Frame = Event | Comment | Retry

/**
 * Builds an {@link Event}. Only the fields you pass are set.
 *
 * @example
 * ```ts
 * import { SseEvent } from "@sluice/core"
 *
 * const e = SseEvent.make({ event: "price", id: "42", data: JSON.stringify({ p: 1 }) })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (fields: Omit<Event, "_tag">): Event => ({ _tag: "Event", ...fields })

/**
 * Builds an event that carries only `data` (type `message`, no id).
 *
 * @example
 * ```ts
 * import { SseEvent } from "@sluice/core"
 *
 * SseEvent.data("hello") // { _tag: "Event", data: "hello" }: a `message` event
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const data = (value: string): Event => ({ _tag: "Event", data: value })

/**
 * Builds a {@link Comment} frame.
 *
 * @example
 * ```ts
 * import { SseEvent } from "@sluice/core"
 *
 * SseEvent.comment("keep-alive") // written as ": keep-alive\n\n"; EventSource ignores it
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const comment = (text: string): Comment => ({ _tag: "Comment", text })

/**
 * Builds a stand-alone {@link Retry} frame.
 *
 * @example
 * ```ts
 * import { SseEvent } from "@sluice/core"
 *
 * SseEvent.retry(5000) // "retry: 5000\n\n": the client waits 5 s before reconnecting
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const retry = (millis: number): Retry => ({ _tag: "Retry", millis })

/**
 * Which part of a frame was rejected.
 *
 * @since 0.1.0
 * @category errors
 */
export type Field = "id" | "event" | "data" | "retry" | "comment"

/**
 * A frame the wire format cannot carry as given. Raised by the encoder before
 * a single byte is produced, so an invalid frame never reaches a client.
 *
 * - `id` or `event` containing CR, LF or NUL would let a value inject extra
 *   fields (or, for `id`, be ignored by clients), so they are rejected.
 * - `retry` must be a non-negative safe integer.
 * - Text must be well-formed Unicode: a lone UTF-16 surrogate cannot be
 *   encoded as UTF-8 without silently changing it to U+FFFD.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEncoder, SseEvent } from "@sluice/core"
 *
 * const program = SseEncoder.encode(SseEvent.make({ event: "a\nb", data: "x" })).pipe(
 *   Effect.catchTag("InvalidEventError", (e) => Effect.succeed(`refused: ${e.field}: ${e.reason}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEventError extends Data.TaggedError("InvalidEventError")<{
  readonly field: Field
  readonly reason: string
}> {
  override get message(): string {
    return `invalid SSE ${this.field}: ${this.reason}`
  }
}
