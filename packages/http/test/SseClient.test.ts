// The SSE client against a real scripted node:http server on 127.0.0.1 (port 0).
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { SseEncoder, SseEvent, SseParser } from "@sluice/core"
import { LeakTracker } from "@sluice/core/testing"
import { Effect, Exit, Fiber, Queue, Schema, Stream, SubscriptionRef } from "effect"
import { HttpClientRequest } from "effect/http"
import { SseClient } from "../src/index.ts"
import { closedPort, type Exchange, scriptedServer, sseHead } from "./SseClient.server.ts"

// Frames the encoder accepts, from pieces that exercise line breaks and multi-byte text.
const textPieces = ["a", "b c", " ", ":", "\r", "\n", "\r\n", "\u00e9", "\ud83d\ude00", "\0", "\ufeff"] as const
const fieldPieces = ["a", " ", ":", "\u00e9", "\ud83d\ude00", "id"] as const
const Text = Schema.Array(Schema.Literals(textPieces)).check(Schema.isMaxLength(10))
const Field = Schema.Array(Schema.Literals(fieldPieces)).check(Schema.isMaxLength(5))
const Frames = Schema.Array(Schema.Union([
  Schema.Struct({
    _tag: Schema.Literal("Event"),
    data: Text,
    event: Schema.optional(Field),
    id: Schema.optional(Field)
  }),
  Schema.Struct({ _tag: Schema.Literal("Comment"), text: Text })
])).check(Schema.isMaxLength(10))
const Cuts = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 300 }))).check(Schema.isMaxLength(8))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const reason = exit.cause.reasons[0]
  if (reason?._tag !== "Fail") throw new Error(`expected a Fail, got ${reason?._tag}`)
  return reason.error
}

/** Writes `text`, then destroys the socket once the bytes are out: a connection dropped mid-stream. */
const writeThenDrop = (exchange: Exchange, text: string) => {
  exchange.res.write(text, () => exchange.res.socket?.destroy())
}

const collectStates = () => {
  const states: Array<SseClient.ConnectionState> = []
  return { states, onStateChange: (s: SseClient.ConnectionState) => Effect.sync(() => void states.push(s)) }
}

describe("SseClient", () => {
  it.live("delivers events and sends the EventSource request headers plus custom ones", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        ex.res.write("id: 1\nevent: tick\ndata: a\n\n: heartbeat\n\ndata: b\ndata: c\n\n")
      })
      const events = yield* SseClient.connect(server.url(), { headers: { authorization: "Bearer secret" } }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      expect(events).toStrictEqual([
        SseEvent.make({ id: "1", event: "tick", data: "a" }),
        SseEvent.make({ id: "1", data: "b\nc" })
      ])
      const { req } = yield* server.request(1)
      expect(req.method).toBe("GET")
      expect(req.headers["accept"]).toBe("text/event-stream")
      expect(req.headers["cache-control"]).toBe("no-cache")
      expect(req.headers["authorization"]).toBe("Bearer secret")
      expect(req.headers["last-event-id"]).toBeUndefined()
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("a connection dropped mid-event: the partial event is discarded, the client resumes with Last-Event-ID", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        if (ex.n === 1) writeThenDrop(ex, "id: 1\ndata: a\n\nid: 2\ndata: cut off")
        else ex.res.write("data: b\n\n")
      })
      const { onStateChange, states } = collectStates()
      const events = yield* SseClient.connect(server.url(), { retry: 0, onStateChange }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      // The id persists into the resumed stream, as in a browser.
      expect(events).toStrictEqual([SseEvent.make({ id: "1", data: "a" }), SseEvent.make({ id: "1", data: "b" })])
      expect((yield* server.request(2)).lastEventId).toBe("1")
      const reconnecting = states.find((s) => s._tag === "Reconnecting")
      expect(reconnecting).toMatchObject({ attempt: 1, delayMillis: 0, error: { reason: "transport" } })
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("a normal end of a 200 stream reconnects; Last-Event-ID carries a UTF-8 id", () =>
    Effect.gen(function*() {
      const id = "\u2026 \u00e9\ud83d\ude00"
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        if (ex.n === 1) ex.res.end(`id: ${id}\ndata: first\n\n`)
        else ex.res.write(`data: again ${ex.n}\n\n`)
      })
      const { onStateChange, states } = collectStates()
      const events = yield* SseClient.connect(server.url(), { retry: 0, onStateChange }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      expect(events.map((e) => [e.id, e.data])).toStrictEqual([[id, "first"], [id, "again 2"]])
      expect((yield* server.request(2)).lastEventId).toBe(id)
      expect(states.map((s) => s._tag)).toStrictEqual([
        "Connecting",
        "Open",
        "Reconnecting",
        "Connecting",
        "Open",
        "Closed"
      ])
      expect(states[2]).toMatchObject({ error: { _tag: "SseConnectionError", reason: "ended" } })
      expect(states[5]).toStrictEqual({ _tag: "Closed", reason: "interrupted" })
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("lastEventId (option or request header) resumes a stream: sent first, carried by events without id", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        ex.res.write(`data: resumed after ${ex.lastEventId}\n\n`)
      })
      const viaOption = yield* SseClient.connect(server.url(), { lastEventId: "41" }).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(viaOption).toStrictEqual([SseEvent.make({ id: "41", data: "resumed after 41" })])
      const viaHeader = yield* SseClient.connect(server.url(), { headers: { "Last-Event-ID": "7" } }).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(viaHeader).toStrictEqual([SseEvent.make({ id: "7", data: "resumed after 7" })])
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("204 ends the stream cleanly, after what earlier connections delivered", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        if (ex.n === 1) {
          sseHead(ex.res)
          ex.res.end("data: only\n\n")
        } else {
          ex.res.writeHead(204).end()
        }
      })
      const { state, events } = yield* SseClient.connectWithState(server.url(), { retry: 0 })
      expect(yield* Stream.runCollect(events)).toStrictEqual([SseEvent.data("only")])
      expect(yield* SubscriptionRef.get(state)).toStrictEqual({ _tag: "Closed", reason: "no-content" })
      expect(server.exchanges).toHaveLength(2)
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("any other status fails the stream with SseStatusError, without reconnecting", () =>
    Effect.gen(function*() {
      for (const status of [500, 404, 201, 301]) {
        const server = yield* scriptedServer((ex) => {
          ex.res.writeHead(status, { "content-type": "text/event-stream" }).end("data: no\n\n")
        })
        const { onStateChange, states } = collectStates()
        const exit = yield* Effect.exit(Stream.runCollect(SseClient.connect(server.url(), { onStateChange })))
        const error = failureOf(exit)
        expect(error).toBeInstanceOf(SseClient.SseStatusError)
        expect(error).toMatchObject({ status, url: server.url() })
        expect(server.exchanges).toHaveLength(1)
        expect(states.at(-1)).toStrictEqual({ _tag: "Closed", reason: "failed", error })
      }
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("a wrong Content-Type fails with SseContentTypeError; parameters and case are fine", () =>
    Effect.gen(function*() {
      for (
        const [contentType, ok] of [
          ["text/plain", false],
          ["application/json", false],
          ["text/event-streams", false],
          ["text/event-stream; charset=utf-8", true],
          ["Text/Event-Stream", true]
        ] as const
      ) {
        const server = yield* scriptedServer((ex) => {
          sseHead(ex.res, contentType)
          ex.res.write("data: x\n\n")
        })
        const exit = yield* Effect.exit(Stream.runCollect(Stream.take(SseClient.connect(server.url()), 1)))
        if (ok) expect(exit).toStrictEqual(Exit.succeed([SseEvent.data("x")]))
        else expect(failureOf(exit)).toMatchObject({ _tag: "SseContentTypeError", contentType })
      }
      const none = yield* scriptedServer((ex) => {
        ex.res.writeHead(200).end("data: x\n\n")
      })
      const exit = yield* Effect.exit(Stream.runCollect(SseClient.connect(none.url())))
      expect(failureOf(exit)).toBeInstanceOf(SseClient.SseContentTypeError)
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("a heartbeat-only stretch keeps the connection alive and emits no events", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        let beats = 0
        const timer = setInterval(() => {
          beats++
          ex.res.write(beats < 15 ? ": hb\n\n" : "data: after heartbeats\n\n")
          if (beats >= 15) clearInterval(timer)
        }, 20)
        ex.res.once("close", () => clearInterval(timer))
      })
      const events = yield* SseClient.connect(server.url(), { idleTimeout: "2 seconds" }).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(events).toStrictEqual([SseEvent.data("after heartbeats")])
      expect(server.exchanges).toHaveLength(1)
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("redirects are followed; reconnections go to the original URL", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        if (ex.req.url === "/start") {
          ex.res.writeHead(307, { location: "/moved" }).end()
        } else {
          sseHead(ex.res)
          ex.res.end(`id: ${ex.n}\ndata: from ${ex.req.url}\n\n`)
        }
      })
      const { onStateChange, states } = collectStates()
      const events = yield* SseClient.connect(server.url("/start"), { retry: 0, onStateChange }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      expect(events.map((e) => e.data)).toStrictEqual(["from /moved", "from /moved"])
      expect(server.exchanges.slice(0, 4).map((ex) => ex.req.url)).toStrictEqual([
        "/start",
        "/moved",
        "/start",
        "/moved"
      ])
      expect(server.exchanges[2]!.lastEventId).toBe("2")
      expect(states.find((s) => s._tag === "Open")).toMatchObject({ url: server.url("/moved") })
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("any request works: a POST with a body (as LLM APIs use)", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        ex.res.write(`data: ${ex.req.method} ${ex.body}\n\n`)
      })
      const request = HttpClientRequest.post(server.url()).pipe(
        HttpClientRequest.bodyText("{\"prompt\":\"hi\"}", "application/json")
      )
      const events = yield* SseClient.connect(request).pipe(Stream.take(1), Stream.runCollect)
      expect(events).toStrictEqual([SseEvent.data("POST {\"prompt\":\"hi\"}")])
      expect((yield* server.request(1)).req.headers["content-type"]).toBe("application/json")
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("parser errors fail the stream: limits in any mode, malformed input in strict mode", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        ex.res.write(ex.req.url === "/long" ? `data: ${"x".repeat(100)}\n\n` : "data: ok\n\nbogus: 1\n\n")
      })
      const long = yield* Effect.exit(Stream.runCollect(SseClient.connect(server.url("/long"), { maxLineSize: 50 })))
      expect(failureOf(long)).toBeInstanceOf(SseParser.SseLimitError)
      const seen: Array<SseEvent.Event> = []
      const strict = yield* SseClient.connect(server.url("/strict"), { strict: true }).pipe(
        Stream.runForEach((e) => Effect.sync(() => seen.push(e))),
        Effect.exit
      )
      expect(seen).toStrictEqual([SseEvent.data("ok")])
      expect(failureOf(strict)).toMatchObject({ _tag: "SseParseError", rule: "unknown-field", line: 3 })
      expect(server.exchanges).toHaveLength(2)
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("maxAttempts: the stream fails with the last connection error once it is used up", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const exit = yield* Effect.exit(
        Stream.runCollect(SseClient.connect(`http://127.0.0.1:${port}/events`, { maxAttempts: 1 }))
      )
      expect(failureOf(exit)).toMatchObject({ _tag: "SseConnectionError", reason: "transport" })
      const invalid = yield* Effect.exit(Stream.runCollect(SseClient.connect("not a url")))
      expect(failureOf(invalid)).toMatchObject({ _tag: "SseConnectionError", reason: "invalid-request" })
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live.prop(
    "interop: whatever SseEncoder writes (in any pieces), the client reads back",
    { specs: Frames, cuts: Cuts },
    ({ cuts, specs }) =>
      Effect.gen(function*() {
        const frames: Array<SseEvent.Frame> = specs.map((spec) =>
          spec._tag === "Comment" ? SseEvent.comment(spec.text.join("")) : SseEvent.make({
            data: spec.data.join(""),
            ...(spec.event === undefined ? {} : { event: spec.event.join("") }),
            ...(spec.id === undefined ? {} : { id: spec.id.join("") })
          })
        )
        const end = SseEvent.make({ event: "end", data: "" })
        const wire = Buffer.concat([...frames, end].map((f) => SseEncoder.encodeUnsafe(f)))
        const server = yield* scriptedServer((ex) => {
          sseHead(ex.res)
          let from = 0
          for (const cut of [...new Set(cuts)].toSorted((a, b) => a - b)) {
            if (cut >= wire.length) break
            ex.res.write(wire.subarray(from, cut))
            from = cut
          }
          ex.res.write(wire.subarray(from))
        })
        const received = yield* SseClient.connect(server.url()).pipe(
          Stream.takeUntil((e) => e.event === "end"),
          Stream.runCollect
        )
        let lastId = ""
        const expected = [...frames, end].flatMap((f): Array<SseEvent.Event> => {
          if (f._tag !== "Event") return []
          if (f.id !== undefined) lastId = f.id
          return [SseEvent.make({
            data: f.data.replace(/\r\n|\r/g, "\n"),
            ...(f.event === undefined || f.event === "" ? {} : { event: f.event }),
            ...(lastId === "" ? {} : { id: lastId })
          })]
        })
        expect(received).toStrictEqual(expected)
      }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerNodeHttp)),
    { arbitrary: { runs: 40 } }
  )

  it("options that cannot work are rejected when the stream is described", () => {
    for (
      const bad of [
        { idleTimeout: 0 },
        { maxAttempts: 0 },
        { maxAttempts: 1.5 },
        { bufferSize: 0 },
        { maxRedirects: -1 },
        { maxLineSize: 0 }
      ]
    ) {
      expect(() => SseClient.connect("http://127.0.0.1:1/", bad)).toThrow(RangeError)
    }
  })

  it.live("stopping the stream aborts the request: the socket closes and no fiber is left", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        sseHead(ex.res)
        ex.res.write("data: one\n\n")
      })
      const tracker = LeakTracker.make()
      const { onStateChange, states } = collectStates()
      const events = yield* tracker.track(
        SseClient.connect(server.url(), { idleTimeout: "1 minute", onStateChange }).pipe(
          Stream.take(1),
          Stream.runCollect
        )
      )
      expect(events).toStrictEqual([SseEvent.data("one")])
      yield* (yield* server.request(1)).closed
      expect(server.openSockets()).toBe(0)
      yield* tracker.assertNoLeaks()
      expect(tracker.started()).toBeGreaterThan(0)
      expect(states.at(-1)).toStrictEqual({ _tag: "Closed", reason: "interrupted" })
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))

  it.live("interrupting a client that waits to reconnect, or waits for headers, leaves nothing behind", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer((ex) => {
        if (ex.n === 1) ex.res.writeHead(503).end()
        // later requests: never answered
      })
      const tracker = LeakTracker.make()
      const { onStateChange, states } = collectStates()
      const seenStates = yield* Queue.unbounded<SseClient.ConnectionState["_tag"]>()
      const fiber = yield* Effect.forkChild(tracker.track(Stream.runDrain(SseClient.connect(server.url(), {
        retryStatus: true,
        retry: "1 hour",
        onStateChange: (s) => Effect.andThen(onStateChange(s), Queue.offer(seenStates, s._tag))
      }))))
      while ((yield* Queue.take(seenStates)) !== "Reconnecting") {
        // wait for the back-off sleep
      }
      yield* Fiber.interrupt(fiber)
      yield* tracker.assertNoLeaks()
      expect(states.at(-1)).toStrictEqual({ _tag: "Closed", reason: "interrupted" })

      const waiting = yield* Effect.forkChild(tracker.track(Stream.runDrain(SseClient.connect(server.url("/x"), {
        onStateChange: (s) => Queue.offer(seenStates, s._tag)
      }))))
      const exchange = yield* server.request(2)
      yield* Fiber.interrupt(waiting)
      yield* exchange.closed
      yield* tracker.assertNoLeaks()
    }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))
})
