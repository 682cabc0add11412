/**
 * A stand-in for a language model: the answer streams as `token` events in
 * bursts with pauses, then a `done` event.
 */
import { SseEvent } from "@sluice/core"
import { Effect, Random, Stream } from "effect"

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
