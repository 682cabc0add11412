import { describe, expect, it } from "@effect/vitest"
import { Effect, Result, Schema } from "effect"
import { SseEncoder, SseEvent } from "../src/index.ts"

const text = (frame: SseEvent.Frame): string => Result.getOrThrow(SseEncoder.encodeText(frame))
const failure = (frame: SseEvent.Frame): SseEvent.InvalidEventError => {
  const r = SseEncoder.encodeResult(frame)
  if (Result.isSuccess(r)) {
    throw new Error(`expected a failure, got ${JSON.stringify(new TextDecoder().decode(r.success))}`)
  }
  return r.failure
}

// A direct transcription of the WHATWG "event stream interpretation" for a complete
// text (no chunking concerns): enough to check what a spec client would see.
const interpret = (input: string) => {
  const out: Array<{ type: string; data: string; lastEventId: string }> = []
  const comments: Array<string> = []
  let data = "", type = "", lastEventId = "", retry: number | undefined
  const lines = input.split(/\r\n|\r|\n/)
  lines.pop() // text after the last line break is an unterminated line
  for (const line of lines) {
    if (line === "") {
      if (data === "") {
        type = ""
        continue
      }
      out.push({
        type: type === "" ? "message" : type,
        data: data.endsWith("\n") ? data.slice(0, -1) : data,
        lastEventId
      })
      data = ""
      type = ""
      continue
    }
    const colon = line.indexOf(":")
    if (colon === 0) {
      comments.push(line.slice(line.startsWith(": ") ? 2 : 1))
      continue
    }
    const name = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? "" : line.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    if (name === "data") data += value + "\n"
    else if (name === "event") type = value
    else if (name === "id" && !value.includes("\0")) lastEventId = value
    else if (name === "retry" && /^[0-9]+$/.test(value)) retry = Number(value)
  }
  return { events: out, comments, retry, lastEventId }
}

describe("SseEncoder", () => {
  it("writes fields in a fixed order and ends the frame with a blank line", () => {
    expect(text(SseEvent.make({ id: "7", event: "tick", retry: 1500, data: "hello" })))
      .toBe("id: 7\nevent: tick\nretry: 1500\ndata: hello\n\n")
    expect(text(SseEvent.data(""))).toBe("data:\n\n")
    expect(text(SseEvent.make({ id: "", data: "x" }))).toBe("id:\ndata: x\n\n")
  })

  it("splits data on CRLF, CR and LF into one data line each", () => {
    expect(text(SseEvent.data("a\r\nb\rc\nd"))).toBe("data: a\ndata: b\ndata: c\ndata: d\n\n")
    expect(text(SseEvent.data("\n"))).toBe("data:\ndata:\n\n")
    expect(text(SseEvent.data("trailing\n"))).toBe("data: trailing\ndata:\n\n")
  })

  it("keeps a leading space: the client strips exactly one", () => {
    expect(text(SseEvent.data(" indented"))).toBe("data:  indented\n\n")
    expect(interpret(text(SseEvent.data(" indented"))).events[0]?.data).toBe(" indented")
  })

  it("encodes comments line by line and stand-alone retry hints", () => {
    expect(text(SseEvent.comment(""))).toBe(":\n\n")
    expect(text(SseEvent.comment("hb"))).toBe(": hb\n\n")
    expect(text(SseEvent.comment("a\nb"))).toBe(": a\n: b\n\n")
    expect(text(SseEvent.retry(0))).toBe("retry: 0\n\n")
  })

  it.each(["a\nb", "a\rb", "a\r\nb", "a\0b"])("rejects an id or event type containing %j", (bad) => {
    expect(failure(SseEvent.make({ id: bad, data: "x" }))).toMatchObject({ _tag: "InvalidEventError", field: "id" })
    expect(failure(SseEvent.make({ event: bad, data: "x" }))).toMatchObject({ field: "event" })
  })

  it("rejects the classic field-injection payload", () => {
    const e = failure(SseEvent.make({ event: "x\ndata: {\"admin\":true}", data: "ok" }))
    expect(e.message).toContain("invalid SSE event: must not contain CR, LF or NUL")
  })

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60])("rejects retry %d", (bad) => {
    expect(failure(SseEvent.make({ retry: bad, data: "x" })).field).toBe("retry")
    expect(failure(SseEvent.retry(bad)).field).toBe("retry")
  })

  it("rejects text that UTF-8 cannot carry unchanged (lone surrogates)", () => {
    expect(failure(SseEvent.data("a\uD800b")).field).toBe("data")
    expect(failure(SseEvent.comment("\uDC00")).field).toBe("comment")
    expect(failure(SseEvent.make({ id: "\uD83D", data: "" })).field).toBe("id")
  })

  it("rejects non-string data from untyped callers instead of writing `undefined`", () => {
    expect(failure({ _tag: "Event", data: 42 } as unknown as SseEvent.Frame).field).toBe("data")
  })

  it.effect("encode is an Effect that fails with the typed error", () =>
    Effect.gen(function*() {
      const bytes = yield* SseEncoder.encode(SseEvent.make({ event: "é", data: "ü" }))
      expect(new TextDecoder().decode(bytes)).toBe("event: é\ndata: ü\n\n")
      const err = yield* Effect.flip(SseEncoder.encode(SseEvent.make({ id: "\n", data: "" })))
      expect(err._tag).toBe("InvalidEventError")
    }))

  it("encodeUnsafe throws the typed error", () => {
    expect(() => SseEncoder.encodeUnsafe(SseEvent.data("\uD800"))).toThrow(SseEvent.InvalidEventError)
  })

  // Property: any event whose fields are representable survives encoding exactly.
  const FieldText = Schema.String.check(Schema.makeFilter((s: string) => !/[\r\n\0]/.test(s) && s.isWellFormed()))
  const DataText = Schema.String.check(Schema.makeFilter((s: string) => s.isWellFormed()))
  it.prop(
    "any valid event survives encoding (spec interpretation gives it back)",
    {
      data: DataText,
      event: Schema.optional(FieldText),
      id: Schema.optional(FieldText),
      retry: Schema.optional(Schema.Natural)
    },
    ({ data, event, id, retry }) => {
      const frame = SseEvent.make({
        data,
        ...(event === undefined ? {} : { event }),
        ...(id === undefined ? {} : { id }),
        ...(retry === undefined ? {} : { retry })
      })
      const bytes = SseEncoder.encodeUnsafe(frame)
      const seen = interpret(new TextDecoder().decode(bytes))
      expect(seen.events).toEqual([{
        type: event === undefined || event === "" ? "message" : event,
        data: data.replace(/\r\n|\r/g, "\n"),
        lastEventId: id ?? ""
      }])
      expect(seen.retry).toBe(retry)
    },
    { arbitrary: { runs: 500 } }
  )

  it.prop("comments never leak into events", { text: DataText }, ({ text: t }) => {
    const seen = interpret(new TextDecoder().decode(SseEncoder.encodeUnsafe(SseEvent.comment(t))))
    expect(seen.events).toEqual([])
    expect(seen.comments).toEqual(t.split(/\r\n|\r|\n/))
  })
})
