/**
 * The parser's error classes. They live here (and are re-exported by `SseParser`) so that the
 * parser engine can build them without importing the public module that imports the engine.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as SchemaIssue from "effect/SchemaIssue"
import type { Event } from "../SseEvent.ts"

const formatIssue = SchemaIssue.makeFormatterDefault()

/**
 * The rule of the event-stream format that strict mode found broken.
 *
 * - `unknown-field`: a field name other than `data`, `event`, `id`, `retry`
 *   (lenient mode ignores the line).
 * - `invalid-retry`: a `retry` value that is not one or more ASCII digits
 *   (lenient mode ignores it).
 * - `nul-in-id`: an `id` value containing U+0000 (lenient mode ignores it).
 * - `truncated-event`: the stream ended inside an event or a line, before the
 *   blank line that dispatches it (lenient mode discards it).
 * - `invalid-utf8`: bytes that are not UTF-8 (lenient mode decodes them to
 *   U+FFFD). Only checked for byte input.
 *
 * @since 0.1.0
 * @category errors
 */
export type ParseRule = "unknown-field" | "invalid-retry" | "nul-in-id" | "truncated-event" | "invalid-utf8"

/**
 * Strict-mode rejection of malformed input. `line` is the 1-based line number
 * (lines end at CRLF, LF or CR) where the problem is; `detail` says what was
 * seen. Lenient mode never raises it.
 *
 * @since 0.1.0
 * @category errors
 */
export class SseParseError extends Data.TaggedError("SseParseError")<{
  readonly rule: ParseRule
  readonly line: number
  readonly detail: string
}> {
  override get message(): string {
    return `SSE parse error (${this.rule}) at line ${this.line}: ${this.detail}`
  }
}

/**
 * A line or an event grew past its configured limit (`maxLineSize` /
 * `maxEventSize`), in either mode. Sizes are counted in UTF-16 code units of
 * decoded text (one per byte for ASCII). The parser stops before buffering
 * the excess, so memory stays bounded.
 *
 * @since 0.1.0
 * @category errors
 */
export class SseLimitError extends Data.TaggedError("SseLimitError")<{
  readonly limit: "line" | "event"
  readonly max: number
  readonly line: number
}> {
  override get message(): string {
    return this.limit === "line"
      ? `SSE line ${this.line} is longer than maxLineSize (${this.max} UTF-16 code units)`
      : `SSE event ending at or after line ${this.line} is larger than maxEventSize (${this.max} UTF-16 code units)`
  }
}

/**
 * Any error the parser itself reports.
 *
 * @since 0.1.0
 * @category errors
 */
export type SseParserError = SseParseError | SseLimitError

/**
 * An event whose `data` did not decode with the given schema. Carries the
 * event as parsed (so the raw `data` can be logged) and the schema issue.
 *
 * @since 0.1.0
 * @category errors
 */
export class SseDataDecodeError extends Data.TaggedError("SseDataDecodeError")<{
  readonly event: Event
  readonly issue: SchemaIssue.Issue
}> {
  override get message(): string {
    const type = this.event.event ?? "message"
    const id = this.event.id === undefined ? "" : ` (id ${JSON.stringify(this.event.id)})`
    return `SSE event "${type}"${id}: data did not decode: ${formatIssue(this.issue)}`
  }
}
