import { describe, expect, it } from "@effect/vitest"
import { type Connection, SseEvent } from "@sluice/core"
import { Deferred, Effect, Layer, Metric, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import * as Http from "node:http"
import * as Zlib from "node:zlib"
import { SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

const get = (port: number, path: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.callback<{ req: Http.ClientRequest; res: Http.IncomingMessage }>((resume) => {
      const req = Http.get({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
        res.on("error", () => {})
        resume(Effect.succeed({ req, res }))
      })
      req.on("error", () => {})
    }),
    ({ req }) => Effect.sync(() => req.destroy())
  )

describe("SseResponse transport", () => {
  it.live("compression (opt-in): gzip with a flush per write, so the first event arrives before the stream ends", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/z",
        SseResponse.stream(() => Stream.concat(Stream.make(SseEvent.data("first")), Stream.never), {
          compression: true,
          lifecycle: { retry: false, open: false }
        })
      ))
      const { res } = yield* get(port, "/z", { "accept-encoding": "gzip, deflate" })
      expect(res.headers["content-encoding"]).toBe("gzip")
      expect(res.headers["vary"]).toBe("accept-encoding")
      const first = yield* Effect.callback<string>((resume) => {
        const gunzip = Zlib.createGunzip()
        res.pipe(gunzip)
        gunzip.once("data", (chunk: Buffer) => resume(Effect.succeed(chunk.toString())))
      })
      expect(first).toBe("data: first\n\n")

      // Without Accept-Encoding: gzip (or with q=0) the stream is not compressed.
      const plain = yield* open(port, "/z")
      yield* plain.awaitFrames(1)
      expect(plain.headers["content-encoding"]).toBeUndefined()
      expect(plain.text()).toBe("data: first\n\n")
      const refused = yield* open(port, "/z", { "accept-encoding": "gzip;q=0, identity" })
      yield* refused.awaitFrames(1)
      expect(refused.headers["content-encoding"]).toBeUndefined()
    }))

  it.live("a half-open client (not reading) is caught by the write timeout", () =>
    Effect.gen(function*() {
      const ended = yield* Deferred.make<Connection.Outcome>()
      const big = "x".repeat(64 * 1024)
      const { port, server } = yield* serve(HttpRouter.add(
        "GET",
        "/flood",
        SseResponse.stream(
          () => Stream.fromSchedule(Schedule.spaced("1 millis")).pipe(Stream.map(() => SseEvent.data(big))),
          { writeTimeout: "300 millis", onEnd: (o) => Deferred.doneUnsafe(ended, Effect.succeed(o)) }
        )
      ))
      const { res } = yield* get(port, "/flood")
      res.pause() // stop reading: kernel and stream buffers fill, then a write cannot finish
      const outcome = yield* Deferred.await(ended)
      expect(outcome._tag).toBe("ClientGone")
      if (outcome._tag === "ClientGone") expect(outcome.error.reason).toBe("timeout")
      // The response is cut, not ended: the slot is freed although the client never reads.
      expect(yield* until(() => server.open() === 0)).toBe(true)
    }))

  it.live("the connection outcome of a client disconnect is client-gone", () =>
    Effect.gen(function*() {
      const ended = yield* Deferred.make<Connection.Outcome>()
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/e",
        SseResponse.stream(() => Stream.never, { onEnd: (o) => Deferred.doneUnsafe(ended, Effect.succeed(o)) })
      ))
      const client = yield* open(port, "/e")
      yield* client.awaitFrames(2)
      client.destroy()
      expect((yield* Deferred.await(ended))._tag).toBe("ClientGone")
    }))

  it.live("GET /metrics serves sluice's metrics in the Prometheus text format", () =>
    Effect.gen(function*() {
      const { port } = yield* serve(Layer.mergeAll(
        HttpRouter.add("GET", "/e", SseResponse.stream(() => Stream.make(SseEvent.data("a"), SseEvent.data("b")))),
        PrometheusMetrics.layerHttp({ path: "/metrics" })
      ))
      const client = yield* open(port, "/e")
      yield* client.ended
      const metrics = yield* open(port, "/metrics")
      yield* metrics.ended
      const text = metrics.text()
      expect(metrics.headers["content-type"]).toContain("text/plain")
      expect(text).toMatch(/sluice_connections_total 1\b/)
      // retry hint, open, a, b, close: heartbeats excluded
      expect(text).toMatch(/sluice_events_delivered_total 5\b/)
      expect(text).toMatch(/sluice_connection_outcomes_total\{reason="completed"\} 1\b/)
      expect(text).toContain("sluice_mailbox_depth")
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})
