// Resumable streams over real sockets that are cut at random points: a
// producer of 2 000 tokens, clients behind a proxy that cuts every
// connection after a random number of response bytes (in the headers, in
// the middle of an event, between events; with a FIN or a reset), and that
// reconnect with Last-Event-ID. 100 seeded runs; in each, sluice's
// SseClient and the `eventsource` npm client read the same stream, and the
// tokens each one saw, concatenated, must equal the producer's output
// exactly: no gap, no duplicate, whatever the cut.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { describe, expect, it } from "@effect/vitest"
import { Resumable, SseEvent } from "@sluice/core"
import { SseClient, SseResumable } from "@sluice/http"
import { TestServer } from "@sluice/http/testing"
import { Deferred, Effect, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { EventSource } from "eventsource"
import * as Net from "node:net"

const runs = 100
const tokensPerRun = 2_000

/** mulberry32: the run's own choices (tokens, pacing, cuts), reproducible from its seed. */
const generator = (seed: number) => {
  let state = seed | 0
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Multi-byte text too, so that cuts also fall inside UTF-8 sequences.
const alphabet = ["a", "b", "c", " ", "é", "ß", "→", "🙂", "字", "\\", "\"", "\n", "x y", "z"]
const tokensOf = (next: () => number): Array<string> =>
  Array.from({ length: tokensPerRun }, () => {
    let t = ""
    for (let k = 1 + Math.floor(next() * 4); k > 0; k--) t += alphabet[Math.floor(next() * alphabet.length)]
    return t
  })

interface Proxy {
  readonly port: number
  /** Connections cut so far. */
  readonly cuts: () => number
  readonly close: () => Promise<void>
}

/**
 * A TCP proxy to `target` that cuts each connection after a random number
 * of response bytes: the first connection after 600 to 8 000 (so the client
 * learns the server's short `retry:` first), the others after 1 to 16 000;
 * after `maxCuts`, connections pass whole.
 */
const cuttingProxy = (target: number, next: () => number, maxCuts: number): Promise<Proxy> =>
  new Promise((resolve) => {
    let cuts = 0
    let connections = 0
    const sockets = new Set<Net.Socket>()
    const server = Net.createServer((client) => {
      const first = connections++ === 0
      const cutAt = cuts >= maxCuts ? Number.POSITIVE_INFINITY : (first ? 600 : 1) + Math.floor(next() * 16_000)
      const reset = next() < 0.5
      const upstream = Net.connect(target, "127.0.0.1")
      sockets.add(client).add(upstream)
      let forwarded = 0
      const closeBoth = () => {
        client.destroy()
        upstream.destroy()
      }
      client.on("data", (chunk) => upstream.write(chunk))
      upstream.on("data", (chunk: Buffer) => {
        if (forwarded >= cutAt) return
        const room = cutAt - forwarded
        if (chunk.length < room) {
          forwarded += chunk.length
          client.write(chunk)
          return
        }
        forwarded = cutAt
        cuts++
        upstream.destroy()
        client.write(chunk.subarray(0, room), () => reset ? client.resetAndDestroy() : client.end())
      })
      for (const s of [client, upstream]) {
        s.on("error", closeBoth)
        s.on("close", () => {
          sockets.delete(s)
          if (s === upstream) client.end()
          else upstream.destroy()
        })
      }
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      resolve({
        port: address.port,
        cuts: () => cuts,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })

const textOf = (data: string): string => (JSON.parse(data) as { text: string }).text

/** Reads the stream through `proxy` with sluice's SseClient until the final close; returns the tokens' text. */
const withSseClient = (url: string) =>
  SseClient.connect(url, { retry: "5 millis", maxDelay: "20 millis" }).pipe(
    Stream.takeUntil((e) => e.event === "connection_close"),
    Stream.runFold(() => ({ text: "", tokens: 0, close: "" }), (acc, e) => {
      if (e.event === "token") {
        acc.text += textOf(e.data)
        acc.tokens++
      } else if (e.event === "connection_close") acc.close = (JSON.parse(e.data) as { reason: string }).reason
      return acc
    }),
    Effect.provide(NodeHttpClient.layerNodeHttp)
  )

/** The same with the `eventsource` npm client (its own reconnection, Last-Event-ID header). */
const withEventSource = (url: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new EventSource(url)),
    (source) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<{ text: string; tokens: number; close: string }>()
        const acc = { text: "", tokens: 0, close: "" }
        source.addEventListener("token", (e) => {
          acc.text += textOf(e.data)
          acc.tokens++
        })
        source.addEventListener("connection_close", (e) => {
          acc.close = (JSON.parse(e.data) as { reason: string }).reason
          source.close()
          Deferred.doneUnsafe(done, Effect.succeed(acc))
        })
        return yield* Deferred.await(done)
      }),
    (source) => Effect.sync(() => source.close())
  )

describe("resumable streams with sockets cut at random points", () => {
  it.live(
    `${runs} seeded runs x ${tokensPerRun} tokens, SseClient and eventsource: the tokens equal the producer's output`,
    () =>
      Effect.gen(function*() {
        const answers = yield* Resumable.make()
        const { port } = yield* TestServer.serve(
          HttpRouter.add(
            "GET",
            "/s/:id/stream",
            SseResumable.attach(answers, () => Effect.map(HttpRouter.params, (p) => p["id"] ?? ""), {
              heartbeat: false,
              lifecycle: { retry: { base: 5, jitter: 0 } }
            })
          )
        )
        const totals = { cuts: 0, tokens: 0 }
        for (let seed = 1; seed <= runs; seed++) {
          const next = generator(seed)
          const tokens = tokensOf(next)
          const burst = 20 + Math.floor(next() * 200)
          const id = `run-${seed}`
          // Live for a while (a pause after each burst), then the rest from the record.
          yield* Resumable.start(
            answers,
            id,
            Stream.fromIterable(tokens).pipe(
              Stream.map((text) => SseEvent.make({ event: "token", data: JSON.stringify({ text }) })),
              Stream.grouped(burst),
              Stream.schedule(Schedule.spaced("2 millis")),
              Stream.flatMap(Stream.fromIterable)
            )
          )
          const proxies = yield* Effect.promise(() =>
            Promise.all([
              cuttingProxy(port, generator(seed * 7 + 1), 30),
              cuttingProxy(port, generator(seed * 7 + 2), 30)
            ])
          )
          const [viaSse, viaEventSource] = yield* Effect.all([
            withSseClient(`http://127.0.0.1:${proxies[0].port}/s/${id}/stream`),
            withEventSource(`http://127.0.0.1:${proxies[1].port}/s/${id}/stream`)
          ], { concurrency: 2 }).pipe(
            Effect.timeoutOrElse({
              duration: "30 seconds",
              orElse: () => Effect.die(new Error(`seed ${seed}: the clients did not finish within 30 s`))
            }),
            Effect.ensuring(Effect.promise(() => Promise.all(proxies.map((p) => p.close()))))
          )
          const expected = tokens.join("")
          for (const [client, seen] of [["SseClient", viaSse], ["eventsource", viaEventSource]] as const) {
            expect({ seed, client, tokens: seen.tokens, close: seen.close, equal: seen.text === expected }).toEqual({
              seed,
              client,
              tokens: tokensPerRun,
              close: "completed",
              equal: true
            })
          }
          totals.cuts += proxies[0].cuts() + proxies[1].cuts()
          totals.tokens += viaSse.tokens + viaEventSource.tokens
        }
        console.log(
          `resumable cuts: ${runs} runs, ${totals.tokens} tokens read through ${totals.cuts} cut connections, 0 mismatches`
        )
        expect(totals.cuts).toBeGreaterThan(runs * 4)
      }),
    300_000
  )
})
