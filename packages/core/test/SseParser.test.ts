import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema, Stream } from "effect"
import { SseEvent, SseParser } from "../src/index.ts"
import { collect, utf8 } from "./SseParser.helpers.ts"

const errorOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons[0]
  if (reason?._tag !== "Fail") throw new Error(`expected a Fail, got ${reason?._tag}`)
  return reason.error
}

describe("SseParser limits", () => {
  it.each([false, true])("a line longer than maxLineSize is a typed error (strict: %s)", (strict) => {
    const ok = collect(["data: 1234\n\n"], { strict, maxLineSize: 10 })
    expect(ok.frames).toStrictEqual([SseEvent.data("1234")])
    const seen = collect(["data: 1\n\ndata: 12345\n\n"], { strict, maxLineSize: 10 })
    expect(seen.frames).toStrictEqual([SseEvent.data("1")])
    expect(seen.error).toStrictEqual({ tag: "SseLimitError", rule: "line", line: 3 })
  })

  it("an over-long line fails as soon as it is seen, before its line break arrives", () => {
    const errors: Array<SseParser.SseParserError> = []
    const parser = SseParser.makeParser({ onEvent: () => {}, onError: (e) => errors.push(e), maxLineSize: 100 })
    for (let i = 0; i < 10; i++) parser.feed("x".repeat(10))
    expect(errors).toHaveLength(0)
    parser.feed("x")
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(SseParser.SseLimitError)
    expect(errors[0]!.message).toBe("SSE line 1 is longer than maxLineSize (100 UTF-16 code units)")
  })

  it("comments count towards the line limit too", () => {
    expect(collect([`:${"x".repeat(20)}\n`], { maxLineSize: 20 }).error)
      .toStrictEqual({ tag: "SseLimitError", rule: "line", line: 1 })
  })

  it.each([false, true])("an event larger than maxEventSize is a typed error (strict: %s)", (strict) => {
    expect(collect(["event: ab\ndata: cd\ndata: e\n\n"], { strict, maxEventSize: 7 }).frames)
      .toStrictEqual([SseEvent.make({ event: "ab", data: "cd\ne" })])
    const seen = collect(["data: 1\n\ndata: abc\ndata: def\n\n"], { strict, maxEventSize: 6 })
    expect(seen.frames).toStrictEqual([SseEvent.data("1")])
    expect(seen.error).toStrictEqual({ tag: "SseLimitError", rule: "event", line: 4 })
  })

  it("the default limits are 1 MiB", () => {
    expect(SseParser.defaultMaxSize).toBe(1024 * 1024)
    const big = "x".repeat(SseParser.defaultMaxSize - "data: ".length)
    expect(collect([`data: ${big}\n\n`]).frames).toStrictEqual([SseEvent.data(big)])
    expect(collect([`data: ${big}x\n\n`]).error).toStrictEqual({ tag: "SseLimitError", rule: "line", line: 1 })
    const lines = `data: ${"y".repeat(1000)}\n`.repeat(1100)
    expect(collect([lines + "\n"]).error).toStrictEqual({ tag: "SseLimitError", rule: "event", line: 1048 })
  })

  it("Infinity disables a limit; other values are rejected when the parser is made", () => {
    expect(collect([`data: ${"x".repeat(100)}\n\n`], { maxLineSize: Infinity, maxEventSize: Infinity }).frames)
      .toHaveLength(1)
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => SseParser.makeParser({ onEvent: () => {}, maxLineSize: bad })).toThrow(RangeError)
      expect(() => SseParser.makeParser({ onEvent: () => {}, maxEventSize: bad })).toThrow(RangeError)
    }
    expect(() => SseParser.makeParser({} as SseParser.ParserOptions)).toThrow(TypeError)
  })
})

describe("SseParser push API", () => {
  it("without onError, feed and end throw the typed error", () => {
    const lenient = SseParser.makeParser({ onEvent: () => {}, maxLineSize: 4 })
    expect(() => lenient.feed("data: x\n")).toThrow(SseParser.SseLimitError)
    const strict = SseParser.makeParser({ onEvent: () => {}, strict: true })
    strict.feed("data: x\n")
    try {
      strict.end()
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(SseParser.SseParseError)
      expect((e as SseParser.SseParseError).message).toBe(
        "SSE parse error (truncated-event) at line 1: the stream ended before the blank line that ends the event starting at line 1"
      )
    }
  })

  it("after an error the parser ignores input until reset()", () => {
    const events: Array<string> = []
    const errors: Array<string> = []
    const parser = SseParser.makeParser({
      strict: true,
      onEvent: (e) => events.push(e.data),
      onError: (e) => errors.push(e._tag === "SseParseError" ? e.rule : e.limit)
    })
    parser.feed("data: 1\n\nbogus\ndata: 2\n\n")
    parser.feed("data: 3\n\n")
    parser.end()
    expect([events, errors]).toStrictEqual([["1"], ["unknown-field"]])
    parser.reset()
    parser.feed("data: 4\n\n")
    parser.end()
    expect([events, errors]).toStrictEqual([["1", "4"], ["unknown-field"]])
  })

  it("an exception thrown by a callback propagates and leaves the parser failed until reset()", () => {
    const events: Array<string> = []
    const parser = SseParser.makeParser({
      onEvent: (e) => {
        if (e.data === "boom") throw new Error("boom")
        events.push(e.data)
      }
    })
    expect(() => parser.feed("data: 1\n\ndata: boom\n\ndata: 2\n\n")).toThrow("boom")
    parser.feed("data: 3\n\n")
    parser.reset()
    parser.feed("data: 4\n\n")
    expect(events).toStrictEqual(["1", "4"])
  })

  it("reset() from a callback drops the rest of the chunk", () => {
    const events: Array<string> = []
    const parser = SseParser.makeParser({
      onEvent: (e) => {
        events.push(e.data)
        if (e.data === "stop") parser.reset()
      }
    })
    parser.feed("data: a\n\ndata: stop\n\ndata: lost\n\n")
    parser.feed("data: b\n\n")
    expect(events).toStrictEqual(["a", "stop", "b"])
  })

  it("lastEventId: an initial value, kept by end() for the next stream, restored by reset()", () => {
    const events: Array<SseEvent.Event> = []
    const parser = SseParser.makeParser({ lastEventId: "41", onEvent: (e) => events.push(e) })
    expect(parser.lastEventId).toBe("41")
    parser.feed("data: a\n\nid: 42\ndata: b\n\nid: 43\ndata: cut")
    expect(parser.lastEventId).toBe("42")
    parser.end()
    expect(parser.lastEventId).toBe("42")
    parser.feed("data: c\n\n")
    parser.reset()
    parser.feed("data: d\n\n")
    expect(events).toStrictEqual([
      SseEvent.make({ id: "41", data: "a" }),
      SseEvent.make({ id: "42", data: "b" }),
      SseEvent.make({ id: "42", data: "c" }),
      SseEvent.make({ id: "41", data: "d" })
    ])
  })

  it("the line number counts every line ending style and survives chunking", () => {
    const seen = collect(["data: a\r\n", "\r", "\n: x\rretry: 1x\n\n"], { strict: true })
    expect(seen.error).toStrictEqual({ tag: "SseParseError", rule: "invalid-retry", line: 4 })
  })

  it("huge retry values are clamped to a safe integer", () => {
    expect(collect([`retry: ${"9".repeat(400)}\n\n`]).frames).toStrictEqual([SseEvent.retry(Number.MAX_SAFE_INTEGER)])
  })

  it("large multi-line events and long lines cut into many chunks", () => {
    const line = "z".repeat(5000)
    const text = `event: big\n${`data: ${line}\n`.repeat(50)}\n`
    const bytes = utf8(text)
    const chunks: Array<Uint8Array> = []
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7))
    expect(collect(chunks).frames).toStrictEqual([
      SseEvent.make({ event: "big", data: Array.from({ length: 50 }, () => line).join("\n") })
    ])
  })
})

describe("SseParser stream operators", () => {
  it.effect("frames: events, comments and retry values in stream order", () =>
    Effect.gen(function*() {
      const out = yield* Stream.make("retry: 500\n", ": hi\n", "id: 1\ndata: x\n\n").pipe(
        SseParser.frames(),
        Stream.runCollect
      )
      expect(out).toStrictEqual([SseEvent.retry(500), SseEvent.comment("hi"), SseEvent.make({ id: "1", data: "x" })])
    }))

  it.effect("events keeps only events; the data-first form works too", () =>
    Effect.gen(function*() {
      const input = Stream.make(utf8("retry: 5\n: c\ndata: a\n\n"), utf8("data: b\n\n"))
      expect(yield* Stream.runCollect(SseParser.events(input, { lastEventId: "9" }))).toStrictEqual([
        SseEvent.make({ id: "9", data: "a" }),
        SseEvent.make({ id: "9", data: "b" })
      ])
    }))

  it.effect("emits what came before a parse error, then fails with it", () =>
    Effect.gen(function*() {
      const seen: Array<SseEvent.Frame> = []
      const exit = yield* Stream.make("data: 1\n\nwhat: 2\n\ndata: 3\n\n").pipe(
        SseParser.frames({ strict: true }),
        Stream.runForEach((f) => Effect.sync(() => seen.push(f))),
        Effect.exit
      )
      expect(seen).toStrictEqual([SseEvent.data("1")])
      const error = errorOf(exit)
      expect(error).toBeInstanceOf(SseParser.SseParseError)
      expect(error).toMatchObject({ rule: "unknown-field", line: 3 })
    }))

  it.effect("strict mode fails a stream that ends inside an event; lenient drops the event", () =>
    Effect.gen(function*() {
      const input = Stream.make("data: 1\n\ndata: 2\n")
      expect(yield* Stream.runCollect(SseParser.events(input))).toStrictEqual([SseEvent.data("1")])
      const exit = yield* Effect.exit(Stream.runCollect(SseParser.events(input, { strict: true })))
      expect(errorOf(exit)).toMatchObject({ _tag: "SseParseError", rule: "truncated-event", line: 3 })
    }))

  it.effect("limit errors fail the stream in lenient mode too; upstream errors pass through", () =>
    Effect.gen(function*() {
      const tooLong = yield* Effect.exit(Stream.runCollect(SseParser.events(Stream.make("data: 123456\n\n"), {
        maxLineSize: 5
      })))
      expect(errorOf(tooLong)).toMatchObject({ _tag: "SseLimitError", limit: "line", max: 5, line: 1 })
      const broken = Stream.make("data: 1\n\n").pipe(Stream.concat(Stream.fail("socket closed" as const)))
      const seen: Array<SseEvent.Event> = []
      const exit = yield* broken.pipe(
        SseParser.events(),
        Stream.runForEach((e) => Effect.sync(() => seen.push(e))),
        Effect.exit
      )
      expect([seen, errorOf(exit)]).toStrictEqual([[SseEvent.data("1")], "socket closed"])
    }))

  it.effect("a stream with no events ends without emitting", () =>
    Effect.gen(function*() {
      expect(yield* Stream.runCollect(SseParser.frames(Stream.empty))).toStrictEqual([])
      expect(yield* Stream.runCollect(SseParser.events(Stream.make(": hb\n\n", ": hb\n\n")))).toStrictEqual([])
    }))
})

describe("SseParser schema decoding", () => {
  const Tick = Schema.Struct({ n: Schema.Number })

  it.effect("decodeJson decodes each event's data and keeps type and id", () =>
    Effect.gen(function*() {
      const out = yield* Stream.make("event: tick\nid: 1\ndata: {\"n\":1}\n\ndata: {\"n\":\n", "data: 2}\n\n").pipe(
        SseParser.events(),
        SseParser.decodeJson(Tick),
        Stream.runCollect
      )
      expect(out).toStrictEqual([
        { _tag: "Event", event: "tick", id: "1", data: { n: 1 } },
        { _tag: "Event", id: "1", data: { n: 2 } }
      ])
    }))

  it.effect("a payload that does not decode fails with the event and the schema issue", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(SseParser.decodeEventJson(SseEvent.make({ id: "7", data: "{\"n\":\"x\"}" }), Tick))
      expect(bad).toBeInstanceOf(SseParser.SseDataDecodeError)
      expect(bad.event).toStrictEqual(SseEvent.make({ id: "7", data: "{\"n\":\"x\"}" }))
      expect(bad.issue._tag).toBeDefined()
      expect(bad.message).toContain("SSE event \"message\" (id \"7\"): data did not decode")
      expect(bad.message).toContain("Expected number")
      const notJson = yield* Effect.flip(SseParser.decodeEventJson(SseEvent.data("{oops"), Tick))
      expect(notJson.event.data).toBe("{oops")
      const exit = yield* Effect.exit(
        Stream.runCollect(SseParser.decodeJson(Stream.make(SseEvent.data("{\"n\":1}"), SseEvent.data("[]")), Tick))
      )
      expect(errorOf(exit)).toMatchObject({ _tag: "SseDataDecodeError", event: SseEvent.data("[]") })
    }))

  it.effect("decodeData uses a string codec for non-JSON payloads", () =>
    Effect.gen(function*() {
      const out = yield* Stream.make("data: 12\n\n").pipe(
        SseParser.events(),
        SseParser.decodeData(Schema.FiniteFromString),
        Stream.runCollect
      )
      expect(out).toStrictEqual([{ _tag: "Event", data: 12 }])
      const direct = yield* SseParser.decodeEventData(SseEvent.data("3.5"), Schema.FiniteFromString)
      expect(direct.data).toBe(3.5)
      const bad = yield* Effect.flip(SseParser.decodeEventData(SseEvent.data("x"), Schema.FiniteFromString))
      expect(bad._tag).toBe("SseDataDecodeError")
    }))
})
