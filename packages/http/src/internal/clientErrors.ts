/**
 * The SSE client's error classes (re-exported by `SseClient`).
 *
 * @internal
 */
import * as Data from "effect/Data"

/**
 * The server answered with a status other than 200 (and other than 204,
 * which ends the stream cleanly). Per the spec this fails the connection; with
 * `retryStatus` a 5xx or 429 is retried instead, and this error is raised
 * only when `maxAttempts` runs out.
 *
 * @since 0.1.0
 * @category errors
 */
export class SseStatusError extends Data.TaggedError("SseStatusError")<{
  readonly url: string
  readonly status: number
}> {
  override get message(): string {
    return `SSE request to ${this.url} answered with status ${this.status}, expected 200`
  }
}

/**
 * The server answered 200 with a `Content-Type` whose MIME type is not
 * `text/event-stream` (parameters such as `charset` are allowed).
 *
 * @since 0.1.0
 * @category errors
 */
export class SseContentTypeError extends Data.TaggedError("SseContentTypeError")<{
  readonly url: string
  readonly contentType: string | undefined
}> {
  override get message(): string {
    return `SSE response from ${this.url} has Content-Type ${
      this.contentType === undefined ? "(none)" : JSON.stringify(this.contentType)
    }, expected text/event-stream`
  }
}

/**
 * Why a connection was lost (or never made):
 * - `transport`: the request or the body read failed (refused, reset, DNS…);
 * - `idle-timeout`: no bytes arrived for `idleTimeout`;
 * - `ended`: the server ended the response normally;
 * - `invalid-request`: the request cannot be sent (invalid URL, a request
 *   body that failed to encode). Retrying cannot help, so it is not retried.
 *
 * @since 0.1.0
 * @category errors
 */
export type ConnectionErrorReason = "transport" | "idle-timeout" | "ended" | "invalid-request"

/**
 * A connection was lost or could not be made. The client reconnects after
 * each of these (except `invalid-request`); the stream fails with one only
 * when `maxAttempts` attempts in a row ended without delivering an event.
 *
 * @since 0.1.0
 * @category errors
 */
export class SseConnectionError extends Data.TaggedError("SseConnectionError")<{
  readonly url: string
  readonly reason: ConnectionErrorReason
  readonly cause?: unknown
}> {
  override get message(): string {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    const why = this.reason === "transport"
      ? `failed${cause}`
      : this.reason === "invalid-request"
      ? `cannot be made${cause}`
      : this.reason === "idle-timeout"
      ? "received no bytes within the idle timeout"
      : "was ended by the server"
    return `SSE connection to ${this.url} ${why}`
  }
}
