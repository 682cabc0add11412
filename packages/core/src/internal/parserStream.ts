/**
 * Stream and Schema adapters over the push parser.
 *
 * @internal
 */
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Pull from "effect/Pull"
import * as Schema from "effect/Schema"
import type * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaParser from "effect/SchemaParser"
import * as Stream from "effect/Stream"
import type { Event, Frame } from "../SseEvent.ts"
import type { DecodedEvent } from "../SseParser.ts"
import { makeParser } from "./parser.ts"
import { SseDataDecodeError, type SseParserError } from "./parserErrors.ts"

/** @internal */
export interface StreamOptions {
  readonly strict?: boolean | undefined
  readonly maxLineSize?: number | undefined
  readonly maxEventSize?: number | undefined
  readonly lastEventId?: string | undefined
}

const upstreamEnded: ReadonlyArray<never> = []

/** @internal */
export const parse = <A extends Frame, E, R>(
  self: Stream.Stream<Uint8Array | string, E, R>,
  options: StreamOptions | undefined,
  allFrames: boolean
): Stream.Stream<A, E | SseParserError, R> =>
  Stream.transformPull(self, (upstream) =>
    Effect.sync(() => {
      let out: Array<A> = []
      let failure: SseParserError | undefined
      let ended = false
      const push = (frame: Frame) => {
        out.push(frame as A)
      }
      const parser = makeParser({
        onEvent: push,
        onRetry: allFrames ? (millis) => push({ _tag: "Retry", millis }) : undefined,
        onComment: allFrames ? (text) => push({ _tag: "Comment", text }) : undefined,
        onError: (error) => {
          failure = error
        },
        strict: options?.strict,
        maxLineSize: options?.maxLineSize,
        maxEventSize: options?.maxEventSize,
        lastEventId: options?.lastEventId
      })
      // The upstream batch being parsed, one chunk per pull, so that a batch of many chunks is
      // emitted as it is parsed rather than buffered whole.
      let batch: ReadonlyArray<Uint8Array | string> = upstreamEnded
      let next = 0
      const receive = (chunks: ReadonlyArray<Uint8Array | string>) => {
        if (chunks === upstreamEnded) {
          ended = true
          parser.end()
        } else {
          batch = chunks
          next = 0
        }
        return pull
      }
      // Frames parsed before an error are emitted first, then the stream fails with it.
      const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<A>, E | SseParserError, void> = Effect.suspend(() => {
        // A failed parser ignores what it is fed, so the loop needs no failure check.
        while (out.length === 0 && next < batch.length) parser.feed(batch[next++]!)
        if (out.length > 0) {
          const frames = out as unknown as Arr.NonEmptyReadonlyArray<A>
          out = []
          return Effect.succeed(frames)
        }
        if (failure !== undefined) return Effect.fail(failure)
        if (ended) return Cause.done()
        // `catchDone` wraps only the upstream pull, so looping adds no stack frames.
        return upstream.pipe(
          Pull.catchDone(() => Effect.succeed(upstreamEnded)),
          Effect.flatMap(receive)
        )
      })
      return pull
    }))

/** @internal */
export const decodeEvent = <A, RD>(
  event: Event,
  decode: (input: unknown) => Effect.Effect<A, SchemaIssue.Issue, RD>
): Effect.Effect<DecodedEvent<A>, SseDataDecodeError, RD> =>
  Effect.matchEffect(decode(event.data), {
    onFailure: (issue) => Effect.fail(new SseDataDecodeError({ event, issue })),
    onSuccess: (data) => Effect.succeed({ ...event, data })
  })

/** @internal */
export const dataDecoder = <A, RD>(schema: Schema.ConstraintCodec<A, string, RD, unknown>) =>
  SchemaParser.decodeUnknownEffect(schema)

/** @internal */
export const jsonDecoder = <A, RD>(schema: Schema.ConstraintDecoder<A, RD>) =>
  SchemaParser.decodeUnknownEffect(Schema.fromJsonString(schema))
