/**
 * Turns SSE frames into their exact wire bytes, once.
 *
 * The result is a `Uint8Array` that can be written to any number of clients:
 * a broadcast hub encodes each event a single time and shares the buffer.
 *
 * The output follows the WHATWG HTML event-stream format:
 * - `data` with CR, LF or CRLF is split into one `data:` line per line;
 * - fields are written as `name: value` (one space, which the client strips,
 *   so values that start with a space survive);
 * - every frame ends with a blank line;
 * - comments are written as `: text` lines.
 *
 * Invalid frames fail with `SseEvent.InvalidEventError` and produce no bytes.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as internal from "./internal/encoder.ts"
import type { Frame, InvalidEventError } from "./SseEvent.ts"

/**
 * Encodes a frame to bytes, failing with `InvalidEventError` when the frame
 * cannot be carried safely.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEncoder, SseEvent } from "@sluice/core"
 *
 * const bytes = Effect.runSync(SseEncoder.encode(SseEvent.make({ event: "tick", data: "a\nb" })))
 * // "event: tick\ndata: a\ndata: b\n\n"
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame): Effect.Effect<Uint8Array, InvalidEventError> =>
  Effect.suspend(() => {
    const out = internal.frameBytes(frame)
    return out instanceof Uint8Array ? Effect.succeed(out) : Effect.fail(out)
  })

/**
 * Synchronous {@link encode} returning a `Result`, for hot paths that do not
 * want to allocate an Effect per frame.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { SseEncoder, SseEvent } from "@sluice/core"
 *
 * const encoded = SseEncoder.encodeResult(SseEvent.make({ id: "bad\nid", data: "x" }))
 * if (Result.isFailure(encoded)) console.error(encoded.failure.message) // the id contains a line break
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeResult = (frame: Frame): Result.Result<Uint8Array, InvalidEventError> => {
  const out = internal.frameBytes(frame)
  return out instanceof Uint8Array ? Result.succeed(out) : Result.fail(out)
}

/**
 * Encodes a frame to its wire text (what {@link encode} would turn into
 * UTF-8 bytes).
 *
 * @example
 * ```ts
 * import { SseEncoder, SseEvent } from "@sluice/core"
 *
 * SseEncoder.encodeText(SseEvent.make({ event: "tick", data: "1" })) // Result.succeed("event: tick\ndata: 1\n\n")
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeText = (frame: Frame): Result.Result<string, InvalidEventError> => {
  const out = internal.frameText(frame)
  return typeof out === "string" ? Result.succeed(out) : Result.fail(out)
}

/**
 * Encodes a frame that is known to be valid (built by your own code from
 * trusted parts, such as a heartbeat). Throws `InvalidEventError` otherwise:
 * use it for constants, not for user input.
 *
 * @example
 * ```ts
 * import { SseEncoder, SseEvent } from "@sluice/core"
 *
 * // A constant frame, encoded once at start-up.
 * const hello = SseEncoder.encodeUnsafe(SseEvent.make({ event: "hello", data: "{}" }))
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeUnsafe = (frame: Frame): Uint8Array => {
  const out = internal.frameBytes(frame)
  if (out instanceof Uint8Array) return out
  throw out
}
