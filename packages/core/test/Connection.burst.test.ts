import { describe, expect, it } from "@effect/vitest"
import { Connection, SseEncoder, SseEvent } from "@sluice/core"
import { TestSink } from "@sluice/core/testing"
import { Effect } from "effect"

const quiet = { heartbeat: false, writeTimeout: false } as const
const frame = (data: string) => SseEncoder.encodeUnsafe(SseEvent.make({ data }))
const data = (text: string) => [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1])

describe("Connection bursts", () => {
  it("makeBurst copies and freezes the array: the caller's array may change, the burst cannot", () => {
    const frames = [frame("1"), frame("2")]
    const burst = Connection.makeBurst(frames)
    frames.push(frame("3"))
    expect(burst).toHaveLength(2)
    expect(Object.isFrozen(burst)).toBe(true)
    expect(() => (burst as unknown as Array<Uint8Array>).push(frame("x"))).toThrow(TypeError)
  })

  it.live("one burst offered to several connections reaches each, from the index each is given", () =>
    Effect.gen(function*() {
      const burst = Connection.makeBurst([frame("1"), frame("2"), frame("3")])
      const a = yield* TestSink.make()
      const b = yield* TestSink.make()
      const connA = yield* Connection.make({ ...quiet, sink: a.sink })
      const connB = yield* Connection.make({ ...quiet, sink: b.sink })
      expect(connA.offerBurstUnsafe(burst, 0)).toBe(3)
      expect(connB.offerBurstUnsafe(burst, 1)).toBe(3)
      // A mailbox that shares the burst copies it before taking more: the burst is unchanged.
      expect(connA.offerUnsafe(frame("4"))).toBe(true)
      yield* connA.close("done")
      yield* connB.close("done")
      yield* connA.outcome
      yield* connB.outcome
      expect(data(a.text())).toEqual(["1", "2", "3", "4"])
      expect(data(b.text())).toEqual(["2", "3"])
      expect(burst).toHaveLength(3)
    }))

  it.live("a full mailbox refuses from the first frame that does not fit (suspend)", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ hangAfter: 0 })
      const conn = yield* Connection.make({ ...quiet, sink: sink.sink, capacity: 2, strategy: "suspend" })
      const burst = Connection.makeBurst([frame("1"), frame("2"), frame("3"), frame("4"), frame("5")])
      // The first write hangs and takes what waited; two more fit; the rest is refused.
      const stop = conn.offerBurstUnsafe(burst, 0)
      expect(stop).toBeLessThan(burst.length)
      expect(conn.size()).toBeLessThanOrEqual(2)
    }))
})
