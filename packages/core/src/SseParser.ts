/**
 * Reads a `text/event-stream` body back into SSE frames, exactly as the
 * WHATWG HTML "event stream interpretation" says a browser does.
 *
 * Three entry points:
 * - {@link makeParser}: a push parser with callbacks, usable without Effect
 *   (the shape users of `eventsource-parser` know);
 * - {@link frames} / {@link events}: `Stream` operators from bytes (or text)
 *   to `SseEvent.Frame`s / `SseEvent.Event`s;
 * - {@link decodeJson} / {@link decodeData}: `Schema` decoding of each
 *   event's `data`, failing with {@link SseDataDecodeError}.
 *
 * What the parser guarantees:
 * - UTF-8 decoding whatever the declared charset, streaming (a character may
 *   be split across chunks); invalid bytes become U+FFFD exactly as with
 *   `TextDecoder` (`fatal: false`); one leading BOM is dropped, even when its
 *   bytes arrive in separate chunks;
 * - lines end at CRLF, LF or a lone CR, and a CRLF split across two chunks is
 *   one line ending: the result never depends on how the input is chunked;
 * - events are dispatched only by a blank line; an event cut off by the end of
 *   the stream is discarded (lenient) or reported (strict).
 *
 * Dispatched events use the `SseEvent.Event` model: `event` is set only when
 * the stream gave a non-empty type (omitted means `"message"`), `id` is the
 * stream's *last event ID* at dispatch time (it persists across events and is
 * omitted while empty), `data` is the `data` lines joined with LF.
 *
 * Two modes. Lenient (the default) is the spec: malformed lines are ignored.
 * Strict dispatches the same events but fails on the first malformed input
 * with an {@link SseParseError} naming the rule and the line. In both modes a
 * line or event above its size limit (default 1 MiB each) fails with an
 * {@link SseLimitError} instead of growing memory.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as internal from "./internal/parser.ts"
import type { SseDataDecodeError, SseParserError } from "./internal/parserErrors.ts"
import * as internalStream from "./internal/parserStream.ts"
import type { Event, Frame } from "./SseEvent.ts"

export {
  /**
   * An event whose `data` did not decode with the given schema. Carries the
   * event as parsed and the `SchemaIssue`.
   *
   * @since 0.1.0
   * @category errors
   */
  SseDataDecodeError,
  /**
   * A line or an event grew past `maxLineSize` / `maxEventSize` (both modes).
   *
   * @since 0.1.0
   * @category errors
   */
  SseLimitError,
  /**
   * Strict-mode rejection of malformed input, with the rule and 1-based line.
   *
   * @since 0.1.0
   * @category errors
   */
  SseParseError
} from "./internal/parserErrors.ts"

export type {
  /**
   * The format rule a strict parser found broken.
   *
   * @since 0.1.0
   * @category errors
   */
  ParseRule,
  /**
   * Any error the parser reports: `SseParseError | SseLimitError`.
   *
   * @since 0.1.0
   * @category errors
   */
  SseParserError
} from "./internal/parserErrors.ts"

/**
 * Default `maxLineSize` and `maxEventSize`: 1 MiB (1,048,576 UTF-16 code
 * units of decoded text).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxSize: number = internal.defaultMaxSize

/**
 * Settings shared by the push parser and the stream operators.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Fail on malformed input (unknown field, non-digit `retry`, NUL in `id`,
   * invalid UTF-8, an event or line cut off by the end of the stream) instead
   * of ignoring it as the spec does. Default `false`.
   */
  readonly strict?: boolean | undefined
  /**
   * Longest accepted line, in UTF-16 code units, line break excluded. A longer
   * line fails with `SseLimitError` as soon as it is seen, even before its
   * line break arrives. Default 1 MiB; `Infinity` disables the check.
   */
  readonly maxLineSize?: number | undefined
  /**
   * Largest accepted event (`data` lines joined, plus the event type), in
   * UTF-16 code units. Default 1 MiB; `Infinity` disables the check.
   */
  readonly maxEventSize?: number | undefined
  /**
   * Initial last event ID, for a stream that resumes a previous one: events
   * without an `id:` field carry it until the stream sets another. Browsers
   * keep the last event ID across reconnections in the same way. Default `""`.
   */
  readonly lastEventId?: string | undefined
}

/**
 * Callbacks and settings for {@link makeParser}.
 *
 * Callbacks run synchronously inside `feed`/`end`. A callback may call
 * `reset()`: the rest of the current chunk is then dropped.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParserOptions extends Options {
  /** Called for each dispatched event. */
  readonly onEvent: (event: Event) => void
  /** Called for each valid `retry:` field with the new reconnection delay in ms. */
  readonly onRetry?: ((millis: number) => void) | undefined
  /** Called for each comment line, with the text after `:` minus one leading space. */
  readonly onComment?: ((text: string) => void) | undefined
  /**
   * Called once with the error that stopped the parser. Without it, `feed` and
   * `end` throw the error instead.
   */
  readonly onError?: ((error: SseParserError) => void) | undefined
}

/**
 * A push parser for one event stream at a time.
 *
 * - `feed(chunk)`: bytes (`Uint8Array`) or already decoded text; chunks may be
 *   split anywhere, even inside a UTF-8 character or a CRLF. Do not switch
 *   from bytes to text in the middle of a character.
 * - `end()`: the stream is over. Whatever was not ended by a blank line is
 *   discarded (strict mode reports it), then the parser is ready for the next
 *   stream, which starts with the current `lastEventId` (as a browser's
 *   `EventSource` keeps it across reconnections).
 * - `reset()`: forget everything (buffers, line count, last event ID back to
 *   the `lastEventId` option, failure) and start a new stream.
 * - `lastEventId`: the stream's *last event ID string*, updated at each blank
 *   line (even one that dispatches nothing), which is what a client sends as
 *   `Last-Event-ID` when it reconnects.
 *
 * After an error (reported through `onError` or thrown), the parser is
 * failed: it has dropped its buffers, and `feed`/`end` do nothing until
 * `reset()`. The same holds when a callback throws: the exception propagates
 * out of `feed`/`end` and the parser stays failed until `reset()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Parser {
  feed(chunk: Uint8Array | string): void
  end(): void
  reset(): void
  readonly lastEventId: string
}

/**
 * Creates a push parser that reports events, `retry` values, comments and
 * errors through callbacks. No Effect runtime involved: use it in callbacks,
 * workers or other libraries.
 *
 * Throws a `RangeError` for a size option that is not a positive integer (or
 * `Infinity`).
 *
 * @example
 * ```ts
 * import { SseParser } from "@sluice/core"
 *
 * const parser = SseParser.makeParser({
 *   onEvent: (e) => console.log(e.event ?? "message", e.id, e.data),
 *   onRetry: (ms) => console.log("retry", ms),
 *   onError: (error) => console.error(error.message)
 * })
 * parser.feed(new TextEncoder().encode("id: 1\nevent: tick\ndata: he"))
 * parser.feed("llo\n\n") // logs: tick 1 hello
 * parser.end()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeParser = (options: ParserOptions): Parser => internal.makeParser(options)

/**
 * Parses a byte (or text) stream into frames: `Event`s, and `Comment` and
 * `Retry` frames for comment lines and valid `retry:` fields, in stream order.
 * Fails with {@link SseParserError} (after emitting the frames that came
 * before the bad input). When the upstream ends, whatever event was not
 * dispatched is discarded (strict mode fails with `truncated-event`).
 *
 * An `Event` never carries `retry`: a `retry:` line inside an event is emitted
 * as its own `Retry` frame before the event.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { SseParser } from "@sluice/core"
 *
 * const frames = Stream.make("retry: 500\n", ": hi\n", "data: x\n\n").pipe(SseParser.frames())
 * // [{ _tag: "Retry", millis: 500 }, { _tag: "Comment", text: "hi" }, { _tag: "Event", data: "x" }]
 * Effect.runPromise(Stream.runCollect(frames))
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const frames: {
  (options?: Options): <E, R>(
    self: Stream.Stream<Uint8Array | string, E, R>
  ) => Stream.Stream<Frame, E | SseParserError, R>
  <E, R>(
    self: Stream.Stream<Uint8Array | string, E, R>,
    options?: Options
  ): Stream.Stream<Frame, E | SseParserError, R>
} = dual(
  (args) => Stream.isStream(args[0]),
  <E, R>(self: Stream.Stream<Uint8Array | string, E, R>, options?: Options) =>
    internalStream.parse<Frame, E, R>(self, options, true)
)

/**
 * Like {@link frames}, but keeps only the dispatched `Event`s (comments and
 * `retry` values are not even materialized, which makes it a little faster).
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { SseParser } from "@sluice/core"
 *
 * const events = Stream.make(new TextEncoder().encode("data: a\n\ndata: b\n\n")).pipe(SseParser.events())
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const events: {
  (options?: Options): <E, R>(
    self: Stream.Stream<Uint8Array | string, E, R>
  ) => Stream.Stream<Event, E | SseParserError, R>
  <E, R>(
    self: Stream.Stream<Uint8Array | string, E, R>,
    options?: Options
  ): Stream.Stream<Event, E | SseParserError, R>
} = dual(
  (args) => Stream.isStream(args[0]),
  <E, R>(self: Stream.Stream<Uint8Array | string, E, R>, options?: Options) =>
    internalStream.parse<Event, E, R>(self, options, false)
)

/**
 * An event whose `data` has been decoded to `A`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecodedEvent<A> {
  readonly _tag: "Event"
  readonly event?: string | undefined
  readonly id?: string | undefined
  readonly data: A
}

/**
 * Decodes one event's `data` (a JSON text) with `schema`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SseEvent, SseParser } from "@sluice/core"
 *
 * const Tick = Schema.Struct({ n: Schema.Number })
 * const decoded = SseParser.decodeEventJson(SseEvent.data("{\"n\":1}"), Tick) // Effect<DecodedEvent<{ n: number }>>
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeEventJson: {
  <A, RD>(
    schema: Schema.ConstraintDecoder<A, RD>
  ): (event: Event) => Effect.Effect<DecodedEvent<A>, SseDataDecodeError, RD>
  <A, RD>(event: Event, schema: Schema.ConstraintDecoder<A, RD>): Effect.Effect<DecodedEvent<A>, SseDataDecodeError, RD>
} = dual(
  2,
  <A, RD>(event: Event, schema: Schema.ConstraintDecoder<A, RD>) =>
    internalStream.decodeEvent(event, internalStream.jsonDecoder(schema))
)

/**
 * Decodes one event's `data` with a schema whose encoded side is the string
 * itself (for example `Schema.FiniteFromString`, or your own codec for a
 * non-JSON payload).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SseEvent, SseParser } from "@sluice/core"
 *
 * const decoded = SseParser.decodeEventData(SseEvent.data("42.5"), Schema.FiniteFromString) // value 42.5
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeEventData: {
  <A, RD>(
    schema: Schema.ConstraintCodec<A, string, RD, unknown>
  ): (event: Event) => Effect.Effect<DecodedEvent<A>, SseDataDecodeError, RD>
  <A, RD>(
    event: Event,
    schema: Schema.ConstraintCodec<A, string, RD, unknown>
  ): Effect.Effect<DecodedEvent<A>, SseDataDecodeError, RD>
} = dual(
  2,
  <A, RD>(event: Event, schema: Schema.ConstraintCodec<A, string, RD, unknown>) =>
    internalStream.decodeEvent(event, internalStream.dataDecoder(schema))
)

/**
 * Decodes the `data` of every event as JSON with `schema`. The stream fails
 * with {@link SseDataDecodeError} (carrying the event and the schema issue) at
 * the first event that does not decode; catch it per event with
 * {@link decodeEventJson} and `Stream.mapEffect` if you prefer to skip bad
 * events.
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { SseParser } from "@sluice/core"
 *
 * const Price = Schema.Struct({ symbol: Schema.String, price: Schema.Number })
 * const prices = Stream.make("data: {\"symbol\":\"A\",\"price\":1}\n\n").pipe(
 *   SseParser.events(),
 *   SseParser.decodeJson(Price)
 * )
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeJson: {
  <A, RD>(
    schema: Schema.ConstraintDecoder<A, RD>
  ): <E, R>(self: Stream.Stream<Event, E, R>) => Stream.Stream<DecodedEvent<A>, E | SseDataDecodeError, R | RD>
  <A, RD, E, R>(
    self: Stream.Stream<Event, E, R>,
    schema: Schema.ConstraintDecoder<A, RD>
  ): Stream.Stream<DecodedEvent<A>, E | SseDataDecodeError, R | RD>
} = dual(2, <A, RD, E, R>(self: Stream.Stream<Event, E, R>, schema: Schema.ConstraintDecoder<A, RD>) => {
  const decode = internalStream.jsonDecoder(schema)
  return Stream.mapEffect(self, (event) => internalStream.decodeEvent(event, decode))
})

/**
 * Decodes the `data` of every event with a string codec (see
 * {@link decodeEventData}); fails the stream with {@link SseDataDecodeError}.
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { SseParser } from "@sluice/core"
 *
 * const temperatures = Stream.make("data: 21.5\n\ndata: 22\n\n").pipe(
 *   SseParser.events(),
 *   SseParser.decodeData(Schema.FiniteFromString)
 * )
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeData: {
  <A, RD>(
    schema: Schema.ConstraintCodec<A, string, RD, unknown>
  ): <E, R>(self: Stream.Stream<Event, E, R>) => Stream.Stream<DecodedEvent<A>, E | SseDataDecodeError, R | RD>
  <A, RD, E, R>(
    self: Stream.Stream<Event, E, R>,
    schema: Schema.ConstraintCodec<A, string, RD, unknown>
  ): Stream.Stream<DecodedEvent<A>, E | SseDataDecodeError, R | RD>
} = dual(
  2,
  <A, RD, E, R>(self: Stream.Stream<Event, E, R>, schema: Schema.ConstraintCodec<A, string, RD, unknown>) => {
    const decode = internalStream.dataDecoder(schema)
    return Stream.mapEffect(self, (event) => internalStream.decodeEvent(event, decode))
  }
)
