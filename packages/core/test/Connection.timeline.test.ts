import { expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { Connection, Sink, SseEvent } from "../src/index.ts"
import { LeakTracker, TestTime } from "../src/testing.ts"

// An exact timeline under TestClock: a producer offering every second into a
// mailbox of capacity 2, and a writer whose writes take 3.5 s and whose third
// write fails. Every offer, write and the interrupt happen at a known instant.
it.effect("producer every 1 s, capacity 2, writes of 3.5 s, the 3rd write fails: the exact timeline", () =>
  Effect.gen(function*() {
    const log: Array<string> = []
    const at = (what: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (t) => Effect.sync(() => log.push(`${t / 1000}s ${what}`)))
    const ids = (chunk: Uint8Array) => [...new TextDecoder().decode(chunk).matchAll(/^data: (\d+)$/gm)].map((m) => m[1])

    let writes = 0
    const sink: Sink.Sink = (chunk) =>
      Effect.gen(function*() {
        const n = ++writes
        yield* at(`write ${n} [${ids(chunk).join(",")}]`)
        if (n === 3) {
          yield* at(`write ${n} fails`)
          return yield* new Sink.WriteError({ reason: "closed", detail: "peer reset" })
        }
        yield* Effect.sleep("3.5 seconds")
        yield* at(`write ${n} done`)
      })

    const producer = (mailbox: Connection.Sender) =>
      Effect.gen(function*() {
        for (let i = 1;; i++) {
          yield* Effect.sleep("1 second")
          yield* mailbox.send(SseEvent.data(String(i)))
          yield* at(`offered ${i}`)
        }
      }).pipe(Effect.onInterrupt(() => at("producer interrupted")))

    const tracker = LeakTracker.make()
    const outcome = yield* TestTime.runToEnd(
      tracker.track(Connection.run({ producer, sink, capacity: 2, heartbeat: false, writeTimeout: false })),
      { step: "500 millis", limit: "1 minute" }
    )

    expect(log).toEqual([
      "1s offered 1",
      "1s write 1 [1]",
      "2s offered 2",
      "3s offered 3", // mailbox full: [2, 3]
      // 4 s: offer 4 suspends (no log line: it has not been accepted)
      "4.5s write 1 done",
      // The writer's take frees capacity and resumes the blocked offer at once
      // (a suspended offer resumes synchronously), before the next write starts.
      "4.5s offered 4",
      "4.5s write 2 [2,3]",
      "5.5s offered 5", // mailbox full again: [4, 5]
      // 6.5 s: offer 6 suspends
      "8s write 2 done",
      "8s offered 6",
      "8s write 3 [4,5]",
      "8s write 3 fails",
      "8s producer interrupted"
    ])
    expect(outcome).toMatchObject({ _tag: "ClientGone", delivered: 3, discarded: 3, writes: 2 })
    yield* tracker.assertNoLeaks()
  }))
