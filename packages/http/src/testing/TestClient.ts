/**
 * A node:http SSE client for tests: it records every chunk exactly as it
 * arrived (so a test can check what one network read held), parses frames,
 * and lets a test wait for a number of frames or the end, without timers.
 *
 * @since 0.1.0
 */
import { SseParser } from "@sluice/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"

/**
 * A frame as the test client saw it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawEvent {
  readonly event: string
  readonly data: string
  readonly id: string | undefined
  readonly retry: number | undefined
}

/**
 * Parses a complete stream text with sluice's spec-exact parser in strict
 * mode, so a test fails on anything a browser would read differently or
 * silently ignore. A `retry:` hint appears as its own entry (with `retry`
 * set and `event` empty); events carry the stream's last event id.
 *
 * @example
 * ```ts
 * import { TestClient } from "@sluice/http/testing"
 *
 * TestClient.parseFrames("event: tick\nid: 1\ndata: 1\n\n") // [{ event: "tick", data: "1", id: "1", retry: undefined }]
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const parseFrames = (text: string): Array<RawEvent> => {
  const out: Array<RawEvent> = []
  const parser = SseParser.makeParser({
    strict: true,
    onEvent: (e) => out.push({ event: e.event ?? "message", data: e.data, id: e.id, retry: undefined }),
    onRetry: (millis) => out.push({ event: "", data: "", id: undefined, retry: millis })
  })
  // Only complete frames: a stream cut mid-frame is parsed up to its last blank line.
  const complete = text.slice(0, text.lastIndexOf("\n\n") + 2)
  parser.feed(complete)
  parser.end()
  return out
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Client {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  /** Raw body chunks as received (one per `data` event of the response). */
  readonly chunks: Array<Buffer>
  readonly text: () => string
  readonly events: () => Array<RawEvent>
  /** Waits until `n` complete frames (events, retry hints) have arrived. */
  readonly awaitFrames: (n: number) => Effect.Effect<void>
  /** Resolves when the response ends (server closed the stream) or the socket closes. */
  readonly ended: Effect.Effect<void>
  readonly destroy: () => void
}

/**
 * Opens `path` on 127.0.0.1:`port` and collects what arrives. The request is
 * destroyed when the scope closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TestClient } from "@sluice/http/testing"
 *
 * const firstEvents = (port: number) =>
 *   Effect.scoped(Effect.gen(function*() {
 *     const client = yield* TestClient.open(port, "/ticks", { "last-event-id": "5" })
 *     yield* client.awaitFrames(3)
 *     return client.events()
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const open = (
  port: number,
  path: string,
  headers: Record<string, string> = {}
): Effect.Effect<Client, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Client>((resume) => {
      const req = Http.get({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
        const chunks: Array<Buffer> = []
        const ended = Deferred.makeUnsafe<void>()
        const waiters: Array<{ n: number; done: Deferred.Deferred<void> }> = []
        const text = () => Buffer.concat(chunks).toString("utf8")
        // Frame ends ("\n\n") counted as bytes arrive, including across chunks.
        let ends = 0
        let lastByte = -1
        const count = (chunk: Buffer) => {
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
            const before = i === 0 ? lastByte : chunk[i - 1]
            if (before === 10) ends++
          }
          if (chunk.length > 0) lastByte = chunk[chunk.length - 1]!
        }
        const frames = () => ends
        const check = () => {
          const n = frames()
          for (let i = waiters.length - 1; i >= 0; i--) {
            if (n >= waiters[i]!.n) Deferred.doneUnsafe(waiters.splice(i, 1)[0]!.done, Effect.void)
          }
        }
        res.on("data", (chunk: Buffer) => {
          chunks.push(chunk)
          count(chunk)
          check()
        })
        const finish = () => {
          Deferred.doneUnsafe(ended, Effect.void)
          for (const w of waiters.splice(0)) Deferred.doneUnsafe(w.done, Effect.void)
        }
        res.on("end", finish)
        res.on("close", finish)
        res.on("error", finish)
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          chunks,
          text,
          events: () => parseFrames(text()),
          awaitFrames: (n) =>
            Effect.suspend(() => {
              if (frames() >= n) return Effect.void
              const done = Deferred.makeUnsafe<void>()
              waiters.push({ n, done })
              return Deferred.await(done)
            }),
          ended: Deferred.await(ended),
          destroy: () => req.destroy()
        }))
      })
      req.on("error", (error) => resume(Effect.die(error)))
    }),
    (client) => Effect.sync(() => client.destroy())
  )
