import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Hub } from "../src/index.ts"
import { countUtf8 } from "../src/internal/bytes.ts"
import { frameSink, range } from "./support/frames.ts"

afterEach(() => {
  vi.restoreAllMocks()
})

// The hub encodes the events of a burst together, in runs (one encoder call per
// run, each event's bytes a view of it when the text is ASCII). What any client
// receives, live or replayed, must not depend on how a burst was cut into runs.
describe("Hub: a burst is encoded in runs", () => {
  const expectedText = (events: ReadonlyArray<{ readonly id: string; readonly data: string }>) =>
    events.map((e) => `id: ${e.id}\ndata: ${e.data}\n\n`).join("")

  it.effect("ASCII events share one encoding per run of at most 8 KiB of text", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const live = frameSink()
      yield* Hub.subscribe(hub, { sink: live.sink, capacity: 1024 })
      const events = range(1, 300).map((n) => ({ id: `e-${n}`, data: `{"n":${n},"pad":"${"x".repeat(80)}"}` }))
      const encode = vi.spyOn(Buffer, "from")
      for (const e of events) yield* Hub.publish(hub, { data: e.data })
      yield* live.awaitEvents(events.length)
      const encodes = encode.mock.calls.filter((args) => typeof args[0] === "string").length
      encode.mockRestore()
      const total = expectedText(events).length
      // Runs are cut at event boundaries, so a run may hold a bit less than 8 KiB.
      expect(encodes).toBeGreaterThanOrEqual(Math.ceil(total / 8192))
      expect(encodes).toBeLessThanOrEqual(Math.ceil(total / 8192) + 1)
      expect(live.text()).toBe(expectedText(events))
      // A later client replaying everything gets the same bytes.
      const late = frameSink()
      yield* Hub.subscribe(hub, { sink: late.sink, capacity: 1024, lastEventId: "e-0" })
      yield* late.awaitEvents(events.length)
      expect(late.text()).toBe(live.text())
    }))

  it.effect("non-ASCII text, events longer than a run, and a client joining mid-burst", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ epoch: "e" })
      const first = frameSink()
      yield* Hub.subscribe(hub, { sink: first.sink, capacity: 1024 })
      const datas = [
        "plain",
        "€ and 😀 and é",
        "y".repeat(20_000), // alone in its run
        "after the long one",
        "ascii again",
        "ünïcödé at the end"
      ]
      const events = datas.map((data, k) => ({ id: `e-${k + 1}`, data }))
      // Half of the burst, then a client joins with the last id it saw (e-2):
      // it must get e-3.. exactly once, whatever was encoded when it joined.
      for (const e of events.slice(0, 3)) yield* Hub.publish(hub, { data: e.data })
      const joiner = frameSink()
      const joined = yield* Hub.subscribe(hub, { sink: joiner.sink, capacity: 1024, lastEventId: "e-2" })
      expect(joined.replay).toMatchObject({ _tag: "Resumed", replayed: 1 })
      for (const e of events.slice(3)) yield* Hub.publish(hub, { data: e.data })
      yield* first.awaitEvents(events.length)
      yield* joiner.awaitEvents(events.length - 2)
      expect(first.text()).toBe(expectedText(events))
      expect(joiner.text()).toBe(expectedText(events.slice(2)))
      expect(hub.stats().history).toEqual({
        events: events.length,
        bytes: new TextEncoder().encode(expectedText(events)).byteLength
      })
    }))

  // Without Node's Buffer, the size check counts UTF-8 bytes itself.
  const size = (text: string) => new TextEncoder().encode(text).byteLength
  it("countUtf8 counts 1 to 4 bytes per character", () => {
    for (const text of ["", "a", "é", "߿", "ࠀ", "€", "\uffff", "😀", "a😀é€\u{10ffff}"]) {
      expect(countUtf8(text)).toBe(size(text))
    }
  })
  it.prop(
    "countUtf8 equals the UTF-8 encoding's length for any well-formed text",
    { text: Schema.String.check(Schema.makeFilter((s: string) => s.isWellFormed())) },
    ({ text }) => {
      expect(countUtf8(text)).toBe(size(text))
    },
    { arbitrary: { runs: 500 } }
  )
})
