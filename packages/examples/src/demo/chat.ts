/**
 * A stand-in for a language model: the answer streams as `token` events in
 * bursts with pauses, then a `done` event.
 *
 * Two ways to serve it:
 * - resumable (the page uses it): `POST /api/chat` with `{ "prompt" }`
 *   starts the generation on the server and answers `201 { "id" }`;
 *   `GET /api/chat/:id/stream` attaches (resuming after `Last-Event-ID` or
 *   `?lastEventId=`): `token` events with `{ "text" }`, then `done` with
 *   `{ "reason" }`, then `connection_close` with the reason (`completed`,
 *   `stopped`, …); `DELETE /api/chat/:id` stops it (`204`; `404` unknown).
 *   The answer goes on while nobody watches; a reload or a second tab picks
 *   it up exactly where it is, and a finished answer can be reopened for its
 *   retention time (10 minutes).
 * - `GET /api/chat/stream?prompt=`: the old non-resumable stream, whose
 *   producer belongs to the connection (it stops when the client leaves).
 */
import { Resumable, SseEvent } from "@sluice/core"
import { Context, Effect, Layer, Random, Schema, Stream } from "effect"
import { randomUUID } from "node:crypto"

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" })

/**
 * The first `max` characters as a reader counts them (grapheme clusters):
 * never half of a surrogate pair, an emoji sequence or a combining mark.
 */
export const truncate = (text: string, max: number): string => {
  let out = ""
  let n = 0
  for (const { segment } of graphemes.segment(text)) {
    if (n++ === max) break
    out += segment
  }
  return out
}

const answerFor = (prompt: string): string => {
  const topic = prompt.trim() === "" ? "streaming" : truncate(prompt.trim(), 80)
  return `You asked about ${topic}. Server-Sent Events keep one HTTP response open and write events as they happen. ` +
    `Each event can carry an id, so a client that reconnects sends Last-Event-ID and the server resumes where it left off. ` +
    `Heartbeats keep proxies from closing quiet streams, and a bounded mailbox per client keeps one slow reader from ` +
    `slowing everyone else.`
}

// Words and the spaces after them, so the client can join tokens as they come.
const tokenize = (text: string): Array<string> => text.match(/\S+\s*/g) ?? []

/** Bursts of 2 to 6 tokens, each after a pause (`pauseMs`, or 40 to 250 ms at random). */
const paced = (tokens: ReadonlyArray<string>, pauseMs: number | undefined) =>
  Stream.unwrap(Effect.gen(function*() {
    const out: Array<ReadonlyArray<string>> = []
    for (let i = 0; i < tokens.length;) {
      const size = yield* Random.nextIntBetween(2, 6)
      out.push(tokens.slice(i, i + size))
      i += size
    }
    return Stream.fromIterable(out).pipe(
      Stream.mapEffect((burst) =>
        Effect.as(
          Effect.flatMap(
            pauseMs === undefined ? Random.nextIntBetween(40, 250) : Effect.succeed(pauseMs),
            (ms) => Effect.sleep(ms)
          ),
          burst
        )
      )
    )
  }))

/** The resumable answer: `token` events whose data is `{ "text" }` (the end is the route's `done`). */
export const answer = (prompt: string, pauseMs?: number): Stream.Stream<SseEvent.Event> =>
  paced(tokenize(answerFor(prompt)), pauseMs).pipe(
    Stream.flatMap((burst) =>
      Stream.fromIterable(burst.map((text) => SseEvent.make({ event: "token", data: JSON.stringify({ text }) })))
    )
  )

/** The body of `POST /api/chat`; `id` (optional) makes a retried request harmless. */
export const Ask = Schema.Struct({
  prompt: Schema.String.check(Schema.isMaxLength(2_000)),
  id: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{8,64}$/)))
})
export type Ask = typeof Ask.Type

export interface Options {
  /** Answers generating at once. */
  readonly maxChats: number
  /** Fixed pause between bursts (ms); default: 40 to 250 ms at random. */
  readonly pauseMs?: number | undefined
}

/** How every chat stream ends: `done` with the reason, before `connection_close`. */
export const done = (end: Resumable.End): ReadonlyArray<SseEvent.Frame> => [
  SseEvent.make({ event: "done", data: JSON.stringify({ reason: Resumable.reasonOf(end) }) })
]

/** The resumable answers of the demo. */
export class Chats extends Context.Service<Chats, {
  readonly answers: Resumable.Resumable
  /** Starts the answer to `ask.prompt` (under `ask.id` when given, else a new id). */
  readonly ask: (ask: Ask) => Effect.Effect<Resumable.Started, Resumable.StartError>
}>()("demo/Chats") {
  static readonly layer = (options: Options) =>
    Layer.effect(
      Chats,
      Effect.gen(function*() {
        const answers = yield* Resumable.make({
          maxStreams: Math.max(1, options.maxChats),
          defaults: { maxLifetime: "2 minutes", retention: "10 minutes", maxEvents: 10_000, maxBytes: 1_048_576 }
        })
        return Chats.of({
          answers,
          ask: (ask) => Resumable.start(answers, ask.id ?? randomUUID(), answer(ask.prompt, options.pauseMs))
        })
      })
    )
}

/** The non-resumable answer of `GET /api/chat/stream?prompt=`: numbered tokens, then `done`. */
export const chat = (prompt: string): Stream.Stream<SseEvent.Frame> => {
  const tokens = tokenize(answerFor(prompt))
  return Stream.unwrap(Effect.gen(function*() {
    const bursts: Array<Array<string>> = []
    for (let i = 0; i < tokens.length;) {
      const size = yield* Random.nextIntBetween(2, 6)
      bursts.push(tokens.slice(i, i + size))
      i += size
    }
    let index = 0
    return Stream.fromIterable(bursts).pipe(
      Stream.mapEffect((burst) =>
        Effect.as(
          Effect.flatMap(Random.nextIntBetween(40, 250), (ms) => Effect.sleep(ms)),
          burst.map((text) => SseEvent.make({ event: "token", data: JSON.stringify({ index: index++, text }) }))
        )
      ),
      Stream.flatMap((events) => Stream.fromIterable(events)),
      Stream.concat(Stream.make(SseEvent.make({ event: "done", data: JSON.stringify({ tokens: tokens.length }) })))
    )
  }))
}
