// Conformance table for the WHATWG HTML "event stream interpretation" (server-sent events):
// one case per rule, each run whole and byte by byte, in lenient (spec) and strict mode.
import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "../src/index.ts"
import { bytewise, collect, utf8 } from "./SseParser.helpers.ts"

const ev = SseEvent.make
const comment = SseEvent.comment
const retry = SseEvent.retry

interface Case {
  /** The rule, in the spec's words or close to them. */
  readonly rule: string
  /** Text (encoded as UTF-8) or raw bytes. */
  readonly input: string | ReadonlyArray<number>
  /** What a lenient (spec) parser reports, in order. */
  readonly frames: ReadonlyArray<SseEvent.Frame>
  readonly lastEventId?: string
  /** Strict mode: omitted = the same frames and no error; else the error and the frames before it. */
  readonly strict?: { readonly rule: string; readonly line: number; readonly frames?: ReadonlyArray<SseEvent.Frame> }
}

const long = "x".repeat(2048)

const table: ReadonlyArray<Case> = [
  // Decoding
  {
    rule: "streams are decoded as UTF-8, whatever charset was declared",
    input: "data: ok\u2026 \u00e9\u4e2d\ud83d\ude00\n\n",
    frames: [ev({ data: "ok\u2026 \u00e9\u4e2d\ud83d\ude00" })]
  },
  {
    rule: "invalid UTF-8 bytes decode to U+FFFD",
    input: [...utf8("data: a"), 0xff, ...utf8("b"), 0xc0, 0xaf, ...utf8("\n\n")],
    frames: [ev({ data: "a\ufffdb\ufffd\ufffd" })],
    strict: { rule: "invalid-utf8", line: 1 }
  },
  {
    rule: "a truncated multi-byte sequence is one U+FFFD (maximal subpart)",
    input: [...utf8("data: "), 0xe2, 0x82, ...utf8("\n\n")],
    frames: [ev({ data: "\ufffd" })],
    strict: { rule: "invalid-utf8", line: 1 }
  },
  {
    rule: "UTF-8 encoded surrogates are invalid",
    input: [...utf8("data: "), 0xed, 0xa0, 0x80, ...utf8("\n\n")],
    frames: [ev({ data: "\ufffd\ufffd\ufffd" })],
    strict: { rule: "invalid-utf8", line: 1 }
  },
  {
    rule: "a genuine U+FFFD in the input is valid",
    input: "data: \ufffd\n\n",
    frames: [ev({ data: "\ufffd" })]
  },
  {
    rule: "one leading BOM is stripped",
    input: [0xef, 0xbb, 0xbf, ...utf8("data: 1\n\n")],
    frames: [ev({ data: "1" })]
  },
  {
    rule: "only one BOM is stripped: a second one makes the first field name unknown",
    input: [0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, ...utf8("data: 1\n\ndata: 2\n\n")],
    frames: [ev({ data: "2" })],
    strict: { rule: "unknown-field", line: 1 }
  },
  {
    rule: "a BOM anywhere but the start is kept",
    input: "data: \ufeffx\n\n\ufeffdata: y\n\n",
    frames: [ev({ data: "\ufeffx" })],
    strict: { rule: "unknown-field", line: 3, frames: [ev({ data: "\ufeffx" })] }
  },
  // Line endings
  { rule: "lines end with LF", input: "data: a\ndata: b\n\n", frames: [ev({ data: "a\nb" })] },
  { rule: "lines end with CRLF", input: "data: a\r\ndata: b\r\n\r\n", frames: [ev({ data: "a\nb" })] },
  { rule: "lines end with a lone CR", input: "data: a\rdata: b\r\r", frames: [ev({ data: "a\nb" })] },
  {
    rule: "line endings can be mixed in one stream",
    input: "data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r",
    frames: [ev({ data: "a\nb\nc" }), ev({ data: "d" })]
  },
  {
    rule: "LF then CR is two line endings (the CR ends a blank line)",
    input: "data: a\n\rdata: b\n\r",
    frames: [ev({ data: "a" }), ev({ data: "b" })]
  },
  // Lines
  {
    rule: "a blank line dispatches the event",
    input: "data: 1\n\ndata: 2\n\n",
    frames: [ev({ data: "1" }), ev({ data: "2" })]
  },
  {
    rule: "a line starting with a colon is a comment (ignored by dispatch)",
    input: ":hello\n: world\n:\ndata: 1\n: inside\ndata: 2\n\n",
    frames: [comment("hello"), comment("world"), comment(""), comment("inside"), ev({ data: "1\n2" })]
  },
  {
    rule: "comments with odd content: NUL, CR, long lines",
    input: `data:1\r:\0\n:\r\ndata:2\n:${long}\rdata:3\n:data:fail\r:${long}\ndata:4\n\n`,
    frames: [comment("\0"), comment(""), comment(long), comment("data:fail"), comment(long), ev({ data: "1\n2\n3\n4" })]
  },
  {
    rule: "the field name is everything before the first colon, the value everything after it",
    input: "data: a:b: c\n\n",
    frames: [ev({ data: "a:b: c" })]
  },
  {
    rule: "exactly one leading space is removed from the value",
    input: "data:  two\ndata:none\ndata:\ttab\ndata: \n\n",
    frames: [ev({ data: " two\nnone\n\ttab\n" })]
  },
  {
    rule: "a line with no colon is a field name with an empty value",
    input: "data\n\ndata\ndata\n\n",
    frames: [ev({ data: "" }), ev({ data: "\n" })]
  },
  {
    rule: "field names are case-sensitive",
    input: "Data: x\nDATA: y\n\n",
    frames: [],
    strict: { rule: "unknown-field", line: 1 }
  },
  {
    rule: "a space before the colon is part of the field name",
    input: "data : x\n\n",
    frames: [],
    strict: { rule: "unknown-field", line: 1 }
  },
  {
    rule: "unknown fields are ignored",
    input: "foo: bar\ndata: 1\nfoo\n\n",
    frames: [ev({ data: "1" })],
    strict: { rule: "unknown-field", line: 1 }
  },
  // data
  {
    rule: "data lines are joined with LF, and the last LF is removed",
    input: "data: a\ndata:\ndata: b\ndata:\n\n",
    frames: [ev({ data: "a\n\nb\n" })]
  },
  { rule: "an empty data field dispatches an event with empty data", input: "data:\n\n", frames: [ev({ data: "" })] },
  { rule: "data keeps NUL characters", input: "data:\0\n\n", frames: [ev({ data: "\0" })] },
  {
    rule: "an event with no data field is not dispatched",
    input: "event: x\n\n:c\n\n\n",
    frames: [comment("c")]
  },
  // event
  {
    rule: "event sets the type; it is reset after each dispatch",
    input: "event: add\ndata: 1\n\ndata: 2\n\n",
    frames: [ev({ event: "add", data: "1" }), ev({ data: "2" })]
  },
  {
    rule: "an empty event type means message (the type is omitted)",
    input: "event: x\nevent:\ndata: 1\n\nevent: message\ndata: 2\n\n",
    frames: [ev({ data: "1" }), ev({ event: "message", data: "2" })]
  },
  {
    rule: "a type set by a block with no data is dropped with it",
    input: "event: x\n\ndata: 1\n\n",
    frames: [ev({ data: "1" })]
  },
  {
    rule: "the last event field of a block wins",
    input: "event: a\nevent: b\ndata\n\n",
    frames: [ev({ event: "b", data: "" })]
  },
  // id
  {
    rule: "id sets the last event ID, which persists across events",
    input: "id: 1\ndata: a\n\ndata: b\n\n",
    frames: [ev({ id: "1", data: "a" }), ev({ id: "1", data: "b" })],
    lastEventId: "1"
  },
  {
    rule: "id changes and persists",
    input: "id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
    frames: [ev({ id: "1", data: "1" }), ev({ id: "2", data: "2" }), ev({ id: "2", data: "3" })],
    lastEventId: "2"
  },
  {
    rule: "an empty id resets the last event ID",
    input: "id: 1\ndata: 1\n\nid:\ndata:2\n\nid: 3\nid\ndata:3\n\n",
    frames: [ev({ id: "1", data: "1" }), ev({ data: "2" }), ev({ data: "3" })],
    lastEventId: ""
  },
  {
    rule: "an id containing NUL is ignored",
    input: "id: 1\ndata: a\n\nid: 2\u00003\ndata: b\n\n",
    frames: [ev({ id: "1", data: "a" }), ev({ id: "1", data: "b" })],
    lastEventId: "1",
    strict: { rule: "nul-in-id", line: 4, frames: [ev({ id: "1", data: "a" })] }
  },
  {
    rule: "a blank line sets the last event ID even when no event is dispatched",
    input: "id: 7\n\n",
    frames: [],
    lastEventId: "7"
  },
  {
    rule: "the last event ID only changes at a blank line",
    input: "id: 1\ndata: a\n\nid: 2\ndata: b\n",
    frames: [ev({ id: "1", data: "a" })],
    lastEventId: "1",
    strict: { rule: "truncated-event", line: 4, frames: [ev({ id: "1", data: "a" })] }
  },
  {
    rule: "ids are arbitrary text",
    input: "id: \u2026 x:y \ud83d\ude00\ndata\n\n",
    frames: [ev({ id: "\u2026 x:y \ud83d\ude00", data: "" })],
    lastEventId: "\u2026 x:y \ud83d\ude00"
  },
  // retry
  { rule: "retry with ASCII digits sets the reconnection time", input: "retry: 1500\n\n", frames: [retry(1500)] },
  {
    rule: "retry takes effect where it is, before the event it is in",
    input: "data: a\nretry: 10\n\n",
    frames: [retry(10), ev({ data: "a" })]
  },
  { rule: "retry may be zero with leading zeros", input: "retry: 000\n\n", frames: [retry(0)] },
  {
    rule: "retry that is not only ASCII digits is ignored",
    input: "retry: 15a\nretry: -1\nretry: 1.5\nretry: 1e3\nretry:\nretry:  100\nretry: \uff11\n\n",
    frames: [],
    strict: { rule: "invalid-retry", line: 1 }
  },
  {
    rule: "a bogus retry does not undo an earlier valid one",
    input: "retry: 2000\nretry: 1000x\ndata: x\n\n",
    frames: [retry(2000), ev({ data: "x" })],
    strict: { rule: "invalid-retry", line: 2, frames: [retry(2000)] }
  },
  // end of stream
  {
    rule: "an event not ended by a blank line is discarded at the end of the stream",
    input: "data: 1\n\ndata: 2\n",
    frames: [ev({ data: "1" })],
    strict: { rule: "truncated-event", line: 3, frames: [ev({ data: "1" })] }
  },
  {
    rule: "an unterminated last line is discarded",
    input: "data: 1\n\ndata: 2",
    frames: [ev({ data: "1" })],
    strict: { rule: "truncated-event", line: 3, frames: [ev({ data: "1" })] }
  },
  {
    rule: "an unterminated retry line has no effect",
    input: "retry: 5",
    frames: [],
    strict: { rule: "truncated-event", line: 1 }
  },
  {
    rule: "an unterminated comment is cut off too",
    input: "data: 1\n\n: bye",
    frames: [ev({ data: "1" })],
    strict: { rule: "truncated-event", line: 3, frames: [ev({ data: "1" })] }
  },
  { rule: "an empty stream has no events", input: "", frames: [] },
  {
    rule: "a stream of blank lines and comments (heartbeats) has no events",
    input: "\n\n: hb\n\n: hb\n\n",
    frames: [comment("hb"), comment("hb")]
  }
]

const bytesOf = (input: Case["input"]): Uint8Array => typeof input === "string" ? utf8(input) : Uint8Array.from(input)

describe("SseParser conformance (WHATWG event stream interpretation)", () => {
  describe.each([
    ["whole", (b: Uint8Array) => [b]],
    ["byte by byte", bytewise]
  ])("lenient, %s", (_, chunk) => {
    it.each(table)("$rule", (c) => {
      const seen = collect(chunk(bytesOf(c.input)))
      expect(seen.error).toBeUndefined()
      expect(seen.frames).toStrictEqual(c.frames)
      expect(seen.lastEventId).toBe(c.lastEventId ?? "")
    })
  })

  describe.each([
    ["whole", (b: Uint8Array) => [b]],
    ["byte by byte", bytewise]
  ])("strict, %s", (_, chunk) => {
    it.each(table)("$rule", (c) => {
      const seen = collect(chunk(bytesOf(c.input)), { strict: true })
      if (c.strict === undefined) {
        expect(seen.error).toBeUndefined()
        expect(seen.frames).toStrictEqual(c.frames)
      } else {
        expect(seen.error).toStrictEqual({ tag: "SseParseError", rule: c.strict.rule, line: c.strict.line })
        expect(seen.frames).toStrictEqual(c.strict.frames ?? [])
      }
    })
  })

  it("text input is parsed like its UTF-8 bytes (a leading U+FEFF is the BOM)", () => {
    for (const c of table) {
      if (typeof c.input !== "string") continue
      expect(collect([c.input]).frames).toStrictEqual(collect([utf8(c.input)]).frames)
    }
    expect(collect(["\ufeffdata: 1\n\n"]).frames).toStrictEqual([ev({ data: "1" })])
  })
})
