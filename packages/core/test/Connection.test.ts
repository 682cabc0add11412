import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Effect, Fiber, Metric, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Connection, Sink, SseEvent } from "../src/index.ts"
import { LeakTracker, TestProducer, TestSink, TestTime } from "../src/testing.ts"

const frames = (ids: ReadonlyArray<number>) => ids.map((i) => `id: ${i}\ndata: ${i}\n\n`).join("")
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k)

describe("Connection", () => {
  it.effect("delivers a stream producer's events in order, then completes", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const outcome = yield* Connection.run({
        producer: Stream.fromIterable(range(1, 10).map(TestProducer.event)),
        sink: sink.sink
      })
      expect(outcome).toMatchObject({ _tag: "Completed", delivered: 10, discarded: 0 })
      expect(sink.text()).toBe(frames(range(1, 10)))
    }))

  it.effect("coalesces a backlog into one write", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ sink: sink.sink, capacity: 100 })
        // Offered synchronously: the writer has not run yet, so it finds all 50.
        for (let i = 1; i <= 50; i++) {
          expect(conn.offerUnsafe(new TextEncoder().encode(frames([i])))).toBe(true)
        }
        yield* conn.close("done")
        const outcome = yield* conn.outcome
        expect(outcome).toMatchObject({ _tag: "Closed", reason: "done", delivered: 50, writes: 1 })
      })))
      expect(sink.chunks()).toHaveLength(1)
      expect(sink.text()).toBe(frames(range(1, 50)))
      yield* tracker.assertNoLeaks()
    }))

  it.effect("backpressure: a full mailbox suspends the producer instead of growing", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ delay: "1 second" })
      const producer = TestProducer.aggressive(100)
      const fiber = yield* Effect.forkChild(
        Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 4 })
      )
      yield* TestTime.settle()
      // One batch is being written (4 events), 4 more wait in the mailbox, and
      // the 9th offer is suspended: nothing beyond capacity is buffered.
      expect(producer.offered()).toBe(8)
      yield* TestTime.settle(200)
      expect(producer.offered()).toBe(8)
      yield* TestClock.adjust("1 second")
      yield* TestTime.settle()
      expect(producer.offered()).toBe(12)
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("drain at completion: a fast producer finishes while the writer is slow; all events arrive, in order", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ delay: "10 millis" })
      const tracker = LeakTracker.make()
      const producer = TestProducer.aggressive(200)
      const outcome = yield* TestTime.runToEnd(
        tracker.track(Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 16 })),
        { step: "10 millis", limit: "1 minute" }
      )
      expect(producer.state()).toBe("completed")
      expect(outcome).toMatchObject({ _tag: "Completed", delivered: 200, discarded: 0 })
      expect(sink.text()).toBe(frames(range(1, 200)))
      // Coalescing: far fewer writes than events.
      expect(outcome.writes).toBeLessThan(200 / 8)
      yield* tracker.assertNoLeaks()
    }))

  it.effect("producer failure: buffered events, then one error event with a safe message, then the end", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ delay: "10 millis" })
      const producer = TestProducer.failing(5, new Error("database password is hunter2"))
      const outcome = yield* TestTime.runToEnd(Connection.run({ producer: producer.producer, sink: sink.sink }), {
        step: "10 millis"
      })
      expect(sink.text()).toBe(
        frames(range(1, 5)) + "event: error\ndata: {\"message\":\"The event stream failed\"}\n\n"
      )
      expect(sink.text()).not.toContain("hunter2")
      expect(outcome._tag).toBe("Failed")
      if (outcome._tag === "Failed") {
        expect(Cause.squash(outcome.cause)).toMatchObject({ message: "database password is hunter2" })
      }
      // The error event counts as delivered: 5 events + 1.
      expect(outcome.delivered).toBe(6)
    }))

  it.effect("terminal frames are configurable for completion and failure", () =>
    Effect.gen(function*() {
      const ok = yield* TestSink.make()
      yield* Connection.run({
        producer: Stream.make(SseEvent.data("x")),
        sink: ok.sink,
        terminal: {
          completed: () => [SseEvent.make({ event: "connection_close", data: "{\"reason\":\"completed\"}" })]
        }
      })
      expect(ok.text()).toBe("data: x\n\nevent: connection_close\ndata: {\"reason\":\"completed\"}\n\n")

      const bad = yield* TestSink.make()
      yield* Connection.run({
        producer: Stream.fail("nope"),
        sink: bad.sink,
        terminal: { failed: (cause) => [SseEvent.make({ event: "oops", data: String(Cause.squash(cause)) })] }
      })
      expect(bad.text()).toBe("event: oops\ndata: nope\n\n")
    }))

  it.effect("an invalid frame from the producer fails the stream with the typed error", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const outcome = yield* Connection.run({
        producer: Stream.make(SseEvent.data("ok"), SseEvent.make({ event: "a\nb", data: "" })),
        sink: sink.sink
      })
      expect(outcome._tag).toBe("Failed")
      if (outcome._tag === "Failed") {
        expect(Cause.squash(outcome.cause)).toMatchObject({ _tag: "InvalidEventError", field: "event" })
      }
      expect(sink.text()).toBe("data: ok\n\nevent: error\ndata: {\"message\":\"The event stream failed\"}\n\n")
    }))

  it.effect("cancellation: interrupting a running connection leaves nothing behind", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const sink = yield* TestSink.make({ delay: "1 millis" })
      const producer = TestProducer.aggressive(1_000_000)
      const fiber = yield* Effect.forkChild(
        tracker.track(Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 8 }))
      )
      yield* TestTime.settle()
      yield* TestClock.adjust("3 millis")
      yield* sink.awaitWrites(3)
      expect(tracker.live()).toBe(3) // producer, writer, watchdog
      yield* Fiber.interrupt(fiber)
      expect(producer.state()).toBe("interrupted")
      expect(producer.finalized()).toBe(1)
      yield* tracker.assertNoLeaks()
    }))

  it.effect("closing the owning scope interrupts the connection: outcome `interrupted`, finalizers once", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const sink = yield* TestSink.make({ hangAfter: 0 })
      const producer = TestProducer.aggressive(1_000)
      const conn = yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const c = yield* Connection.make({ producer: producer.producer, sink: sink.sink, capacity: 4 })
        yield* sink.awaitFault
        return c
      })))
      const outcome = yield* conn.outcome
      expect(outcome._tag).toBe("Interrupted")
      expect(outcome.delivered).toBe(0)
      // The batch inside the hanging write plus the full mailbox.
      expect(outcome.discarded).toBe(producer.offered())
      expect(producer.finalized()).toBe(1)
      expect(conn.isOpen()).toBe(false)
      expect(conn.offerUnsafe(new Uint8Array(1))).toBe(false)
      yield* tracker.assertNoLeaks()
    }))

  it.effect("close(): what was accepted is written, then the final frames; later offers are refused", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ sink: sink.sink })
        conn.offerUnsafe(new TextEncoder().encode(frames([1])))
        conn.offerUnsafe(new TextEncoder().encode(frames([2])))
        expect(yield* conn.close("replaced", [SseEvent.make({ event: "connection_close", data: "replaced" })]))
          .toBe(true)
        expect(conn.offerUnsafe(new TextEncoder().encode(frames([3])))).toBe(false)
        expect(yield* conn.close("again")).toBe(false)
        const outcome = yield* conn.outcome
        expect(outcome).toMatchObject({ _tag: "Closed", reason: "replaced", delivered: 3 })
      }))
      expect(sink.text()).toBe(frames([1, 2]) + "event: connection_close\ndata: replaced\n\n")
    }))

  it.effect("close() interrupts a producer that is blocked on a full mailbox", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ delay: "1 hour" })
      const producer = TestProducer.aggressive(100)
      yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ producer: producer.producer, sink: sink.sink, capacity: 2 })
        yield* TestTime.settle()
        expect(producer.state()).toBe("running")
        yield* conn.close("shutdown")
        expect(producer.state()).toBe("interrupted")
        expect(producer.finalized()).toBe(1)
      }))
    }))

  it.effect("kill(): ends at once, discarding (and counting) what is buffered", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ hangAfter: 0 })
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ sink: sink.sink, capacity: 3 })
        for (let i = 0; i < 3; i++) conn.offerUnsafe(new Uint8Array([58, 10, 10]))
        yield* sink.awaitFault // the writer holds one batch in a write that never ends
        for (let i = 0; i < 3; i++) conn.offerUnsafe(new Uint8Array([58, 10, 10]))
        expect(conn.offerUnsafe(new Uint8Array([58, 10, 10]))).toBe(false) // full
        yield* conn.kill("slow-consumer")
        const outcome = yield* conn.outcome
        expect(outcome).toMatchObject({ _tag: "Closed", reason: "slow-consumer", delivered: 0, discarded: 6 })
      })))
      yield* tracker.assertNoLeaks()
    }))

  it.effect("heartbeats: a comment after each idle interval; every write resets the timer; none after the end", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const sink: Connection.Options["sink"] = (chunk) =>
        Effect.flatMap(Clock.currentTimeMillis, (t) =>
          Effect.sync(() => {
            log.push(`${t / 1000}s ${JSON.stringify(new TextDecoder().decode(chunk))}`)
          }))
      const producer = (mailbox: Connection.Sender) =>
        Effect.gen(function*() {
          yield* mailbox.send(SseEvent.data("e1"))
          yield* Effect.sleep("40 seconds")
          yield* mailbox.send(SseEvent.data("e2"))
          yield* Effect.sleep("20 seconds")
        })
      const outcome = yield* TestTime.runToEnd(
        Connection.run({ producer, sink, heartbeat: "15 seconds", heartbeatText: "hb" }),
        { step: "1 second" }
      )
      expect(log).toEqual([
        "0s \"data: e1\\n\\n\"",
        "15s \": hb\\n\\n\"",
        "30s \": hb\\n\\n\"",
        "40s \"data: e2\\n\\n\"",
        "55s \": hb\\n\\n\""
      ])
      expect(outcome).toMatchObject({ _tag: "Completed", delivered: 2, heartbeats: 3 })
      expect(yield* Clock.currentTimeMillis).toBe(60_000)
    }))

  it.effect("a heartbeat text with line breaks stays a comment: no field, no event injected", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      const sink: Connection.Options["sink"] = (chunk) =>
        Effect.sync(() => {
          written.push(new TextDecoder().decode(chunk))
        })
      const producer = (mailbox: Connection.Sender) =>
        Effect.andThen(mailbox.send(SseEvent.data("e1")), Effect.sleep("20 seconds"))
      yield* TestTime.runToEnd(
        Connection.run({ producer, sink, heartbeat: "15 seconds", heartbeatText: "hb\n\ndata: injected\r\uD800" }),
        { step: "1 second" }
      )
      expect(written).toEqual(["data: e1\n\n", ": hb\n:\n: data: injected\n: \uFFFD\n\n"])
    }))

  it.effect("write timeout: a hanging sink ends the connection as client-gone at the deadline", () =>
    Effect.gen(function*() {
      const tracker = LeakTracker.make()
      const sink = yield* TestSink.make({ hangAfter: 1 })
      const producer = (mailbox: Connection.Sender) =>
        Effect.gen(function*() {
          yield* mailbox.send(SseEvent.data("one"))
          yield* Effect.sleep("2 seconds")
          yield* mailbox.send(SseEvent.data("two")) // this write hangs
          yield* Effect.never
        })
      const outcome = yield* TestTime.runToEnd(
        tracker.track(Connection.run({ producer, sink: sink.sink, writeTimeout: "5 seconds", heartbeat: false })),
        { step: "100 millis" }
      )
      expect(outcome._tag).toBe("ClientGone")
      if (outcome._tag === "ClientGone") expect(outcome.error.reason).toBe("timeout")
      expect(outcome).toMatchObject({ delivered: 1, discarded: 1 })
      // The hanging write started at 2 s; the deadline is exact.
      expect(yield* Clock.currentTimeMillis).toBe(7_000)
      yield* tracker.assertNoLeaks()
    }))

  it.effect("a write timeout shorter than the heartbeat is still detected on time", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ hangAfter: 0 })
      const producer = (mailbox: Connection.Sender) =>
        Effect.andThen(Effect.sleep("7 seconds"), mailbox.send(SseEvent.data("x")))
      const outcome = yield* TestTime.runToEnd(
        Connection.run({ producer, sink: sink.sink, writeTimeout: "1 second", heartbeat: "1 minute" }),
        { step: "100 millis" }
      )
      expect(outcome._tag).toBe("ClientGone")
      expect(yield* Clock.currentTimeMillis).toBe(8_000)
    }))

  it.effect("metrics: delivered, discarded and outcomes are counted", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ failAfter: 1 })
      const producer = TestProducer.aggressive(10)
      yield* Connection.run({ producer: producer.producer, sink: sink.sink, capacity: 2 })
      const snapshot = yield* Metric.snapshot
      const value = (name: string, reason?: string) =>
        snapshot.find((m) => m.id === name && (reason === undefined || m.attributes?.["reason"] === reason))?.state
      expect(value("sluice_connections_total")).toMatchObject({ count: 1 })
      expect(value("sluice_events_delivered_total")).toMatchObject({ count: 2 })
      expect(value("sluice_connection_outcomes_total", "client-gone")).toMatchObject({ count: 1 })
      expect(value("sluice_connections_open")).toMatchObject({ value: 0 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("a function producer can push encoded bytes and many frames at once", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      yield* Connection.run({
        producer: (mailbox) =>
          Effect.gen(function*() {
            yield* mailbox.sendBytes(new TextEncoder().encode("data: raw\n\n"))
            yield* mailbox.sendAll([SseEvent.comment("c"), SseEvent.retry(500)])
          }),
        sink: sink.sink
      })
      expect(sink.text()).toBe("data: raw\n\n: c\n\nretry: 500\n\n")
    }))

  it.effect("the mailbox refuses offers after the end, interrupting the producer (no silent busy loop)", () =>
    Effect.gen(function*() {
      const q = yield* Queue.unbounded<string>()
      const sink = yield* TestSink.make({ failAfter: 0 })
      const outcome = yield* Connection.run({
        producer: (mailbox) =>
          Effect.gen(function*() {
            for (let i = 0; i < 10_000; i++) {
              yield* mailbox.send(SseEvent.data(String(i)))
              yield* Queue.offer(q, String(i))
            }
          }),
        sink: sink.sink,
        capacity: 1
      })
      expect(outcome._tag).toBe("ClientGone")
      expect(Queue.sizeUnsafe(q)).toBeLessThan(5)
    }))

  it.effect("lost(): the transport reports the client gone while the writer is idle", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const ended: Array<Connection.Outcome["_tag"]> = []
      const tracker = LeakTracker.make()
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ producer: TestProducer.aggressive(0).producer, sink: sink.sink })
        conn.addObserver((o) => ended.push(o._tag))
        yield* conn.lost(new Sink.WriteError({ reason: "closed", detail: "socket closed" }))
        const outcome = yield* conn.outcome
        expect(outcome._tag).toBe("ClientGone")
        if (outcome._tag === "ClientGone") expect(outcome.error.detail).toBe("socket closed")
      })))
      expect(ended).toEqual(["ClientGone"])
      yield* tracker.assertNoLeaks()
    }))

  it.effect("lostUnsafe(): the same from outside any fiber, once", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make()
      const tracker = LeakTracker.make()
      const results: Array<boolean> = []
      yield* tracker.track(Effect.scoped(Effect.gen(function*() {
        const conn = yield* Connection.make({ producer: TestProducer.aggressive(0).producer, sink: sink.sink })
        // As a socket's `close` listener would: a plain callback, no fiber.
        yield* Effect.promise(() =>
          new Promise<void>((resolve) =>
            setImmediate(() => {
              results.push(conn.lostUnsafe(new Sink.WriteError({ reason: "closed", detail: "socket closed" })))
              results.push(conn.lostUnsafe(new Sink.WriteError({ reason: "closed", detail: "again" })))
              resolve()
            })
          )
        )
        const outcome = yield* conn.outcome
        expect(outcome._tag).toBe("ClientGone")
        if (outcome._tag === "ClientGone") expect(outcome.error.detail).toBe("socket closed")
      })))
      expect(results).toEqual([true, false])
      yield* tracker.assertNoLeaks()
    }))

  it.effect("a huge batch from a stream is offered a mailbox at a time, not encoded all at once", () =>
    Effect.gen(function*() {
      const sink = yield* TestSink.make({ delay: "1 hour" })
      let encoded = 0
      // One array of 100 000 frames: a stream emits it as a single chunk.
      const batch = Array.from({ length: 100_000 }, (_, i): SseEvent.Event => ({
        _tag: "Event",
        get data() {
          encoded++ // the encoder reads `data` once per frame
          return String(i)
        }
      }))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Connection.make({ producer: Stream.fromArray(batch), sink: sink.sink, capacity: 8 })
        yield* TestTime.settle(50)
        // The writer holds one batch, the mailbox one more, the producer one slice.
        expect(encoded).toBeGreaterThan(0)
        expect(encoded).toBeLessThanOrEqual(8 * 3)
      }))
    }))
})
