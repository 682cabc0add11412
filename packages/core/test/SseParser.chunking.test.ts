// Properties: the parse never depends on how the input is chunked (in both modes), UTF-8
// decoding matches TextDecoder exactly, and parsing what the encoder wrote gives the frames back.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import { SseEncoder, SseEvent, SseParser } from "../src/index.ts"
import { bytewise, collect, splitAt, utf8 } from "./SseParser.helpers.ts"

// Pieces of SSE-shaped text: field names, separators, every line ending, multi-byte characters,
// BOMs and NULs, so random joins hit the interesting cases often.
const sseTokens = [
  "data",
  "event",
  "id",
  "retry",
  ":",
  " ",
  "\n",
  "\r",
  "\r\n",
  "\n\n",
  "x",
  "42",
  "\u00e9",
  "\u4e2d",
  "\ud83d\ude00",
  "\ufeff",
  "\0",
  "data: a\n",
  "id: 7\n",
  "retry: 10\n",
  ": c\n"
] as const
const SseText = Schema.Array(Schema.Literals(sseTokens)).check(Schema.isMaxLength(60))
const Cuts = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 400 }))).check(
  Schema.isMaxLength(12)
)
const Mode = Schema.Literals(["lenient", "strict"])
const optionsFor = (mode: "lenient" | "strict") => mode === "strict" ? { strict: true } : {}
const sorted = (cuts: ReadonlyArray<number>) => [...new Set(cuts)].toSorted((a, b) => a - b)

// Bytes weighted towards UTF-8 edge cases: lead bytes of each length, the special second-byte
// ranges (E0, ED, F0, F4), continuation bytes, invalid leads (C0, C1, F5, FF), the BOM's bytes.
const edgeBytes = [
  0x41,
  0x20,
  0x00,
  0x7f,
  0x80,
  0x8f,
  0x90,
  0x9f,
  0xa0,
  0xbb,
  0xbf,
  0xc0,
  0xc1,
  0xc2,
  0xc3,
  0xdf,
  0xe0,
  0xe2,
  0xed,
  0xef,
  0xf0,
  0xf4,
  0xf5,
  0xff
] as const
const RawBytes = Schema.Array(Schema.Literals(edgeBytes)).check(Schema.isMaxLength(40))

describe("SseParser re-chunking", () => {
  it.prop(
    "splitting the bytes at any single position gives the same result",
    { tokens: SseText, mode: Mode },
    ({ mode, tokens }) => {
      const bytes = utf8(tokens.join(""))
      const options = optionsFor(mode)
      const whole = collect([bytes], options)
      for (let i = 0; i <= bytes.length; i++) {
        expect(collect(splitAt(bytes, [i]), options)).toStrictEqual(whole)
      }
    },
    { arbitrary: { runs: 300 } }
  )

  it.prop(
    "random multi-splits, byte-by-byte feeding and text chunks all agree",
    { tokens: SseText, cuts: Cuts, mode: Mode },
    ({ cuts, mode, tokens }) => {
      const text = tokens.join("")
      const bytes = utf8(text)
      const options = optionsFor(mode)
      const whole = collect([bytes], options)
      expect(collect(splitAt(bytes, sorted(cuts)), options)).toStrictEqual(whole)
      expect(collect(bytewise(bytes), options)).toStrictEqual(whole)
      // Text chunks, cut anywhere (even between the halves of a surrogate pair).
      const pieces: Array<string> = []
      let from = 0
      for (const cut of sorted(cuts)) {
        if (cut > text.length) break
        pieces.push(text.slice(from, cut))
        from = cut
      }
      pieces.push(text.slice(from))
      expect(collect(pieces, options)).toStrictEqual(whole)
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop(
    "UTF-8 decoding matches TextDecoder (fatal: false) for any bytes and any split",
    { raw: RawBytes, cuts: Cuts },
    ({ cuts, raw }) => {
      const prefix = utf8("data:x")
      const bytes = new Uint8Array([...prefix, ...raw, 0x0a, 0x0a])
      const expected = [SseEvent.data("x" + new TextDecoder("utf-8", { ignoreBOM: true }).decode(Uint8Array.from(raw)))]
      for (let i = 0; i <= bytes.length; i++) {
        expect(collect(splitAt(bytes, [i])).frames).toStrictEqual(expected)
      }
      expect(collect(splitAt(bytes, sorted(cuts))).frames).toStrictEqual(expected)
      expect(collect(bytewise(bytes)).frames).toStrictEqual(expected)
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop(
    "strict mode rejects exactly the byte sequences that are not UTF-8, wherever they are split",
    { raw: RawBytes, cuts: Cuts },
    ({ cuts, raw }) => {
      const bytes = new Uint8Array([...utf8("data:x"), ...raw, 0x0a, 0x0a])
      let valid = true
      try {
        new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(raw))
      } catch {
        valid = false
      }
      const seen = collect(splitAt(bytes, sorted(cuts)), { strict: true })
      if (valid) expect(seen.error).toBeUndefined()
      else expect(seen.error).toStrictEqual({ tag: "SseParseError", rule: "invalid-utf8", line: 1 })
    },
    { arbitrary: { runs: 500 } }
  )

  it("a BOM split across chunks is stripped once; a CRLF split across chunks is one line ending", () => {
    const bytes = utf8("\ufeffdata: a\r\n\r\ndata: b\r\n\r\n")
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        expect(collect(splitAt(bytes, [i, j])).frames).toStrictEqual([SseEvent.data("a"), SseEvent.data("b")])
      }
    }
    const split = [new Uint8Array(), new Uint8Array([0xef]), new Uint8Array(), new Uint8Array([0xbb, 0xbf])]
    expect(collect([...split, utf8("data: 1\n\n")]).frames).toStrictEqual([SseEvent.data("1")])
  })
})

// Frames the encoder accepts, built from pieces that exercise line breaks and multi-byte text.
const dataPieces = [
  "a",
  "b c",
  " ",
  ":",
  "\r",
  "\n",
  "\r\n",
  "\u00e9",
  "\ud83d\ude00",
  "\0",
  "\ufeff",
  "data: x",
  "\t"
] as const
const fieldPieces = ["a", "b c", " ", ":", "\u00e9", "\ud83d\ude00", "\ufeff", "message", "\t"] as const
const DataText = Schema.Array(Schema.Literals(dataPieces)).check(Schema.isMaxLength(12))
const FieldText = Schema.Array(Schema.Literals(fieldPieces)).check(Schema.isMaxLength(6))
const Millis = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_000_000 }))
const FrameSpec = Schema.Union([
  Schema.Struct({
    _tag: Schema.Literal("Event"),
    data: DataText,
    event: Schema.optional(FieldText),
    id: Schema.optional(FieldText),
    retry: Schema.optional(Millis)
  }),
  Schema.Struct({ _tag: Schema.Literal("Comment"), text: DataText }),
  Schema.Struct({ _tag: Schema.Literal("Retry"), millis: Millis })
])
type FrameSpec = typeof FrameSpec.Type

const toFrame = (spec: FrameSpec): SseEvent.Frame => {
  switch (spec._tag) {
    case "Event":
      return SseEvent.make({
        data: spec.data.join(""),
        ...(spec.event === undefined ? {} : { event: spec.event.join("") }),
        ...(spec.id === undefined ? {} : { id: spec.id.join("") }),
        ...(spec.retry === undefined ? {} : { retry: spec.retry })
      })
    case "Comment":
      return SseEvent.comment(spec.text.join(""))
    case "Retry":
      return SseEvent.retry(spec.millis)
  }
}

// What a spec client sees for each frame: line breaks in data become LF, ids persist, the type
// "" means message, and a frame's retry comes before its event.
const expectedFrames = (frames: ReadonlyArray<SseEvent.Frame>): Array<SseEvent.Frame> => {
  const out: Array<SseEvent.Frame> = []
  let lastId = ""
  for (const frame of frames) {
    if (frame._tag === "Comment") {
      for (const line of frame.text.split(/\r\n|\r|\n/)) out.push(SseEvent.comment(line))
    } else if (frame._tag === "Retry") {
      out.push(frame)
    } else {
      if (frame.retry !== undefined) out.push(SseEvent.retry(frame.retry))
      if (frame.id !== undefined) lastId = frame.id
      out.push(SseEvent.make({
        data: frame.data.replace(/\r\n|\r/g, "\n"),
        ...(frame.event === undefined || frame.event === "" ? {} : { event: frame.event }),
        ...(lastId === "" ? {} : { id: lastId })
      }))
    }
  }
  return out
}

describe("SseParser reads what SseEncoder writes", () => {
  it.effect.prop(
    "encode then parse is the identity (Stream operator, random chunking, both modes)",
    { specs: Schema.Array(FrameSpec).check(Schema.isMaxLength(8)), cuts: Cuts, mode: Mode },
    ({ cuts, mode, specs }) =>
      Effect.gen(function*() {
        const frames = specs.map(toFrame)
        const wire = new Uint8Array(frames.flatMap((f) => [...SseEncoder.encodeUnsafe(f)]))
        const parsed = yield* Stream.fromIterable(splitAt(wire, sorted(cuts))).pipe(
          SseParser.frames(optionsFor(mode)),
          Stream.runCollect
        )
        expect(parsed).toStrictEqual(expectedFrames(frames))
        const events = yield* Stream.runCollect(SseParser.events(Stream.fromIterable(bytewise(wire))))
        expect(events).toStrictEqual(expectedFrames(frames).filter((f) => f._tag === "Event"))
      }),
    { arbitrary: { runs: 300 } }
  )
})
