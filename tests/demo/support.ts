/**
 * Reading the demo's streams in tests: every stream is parsed twice, with the
 * spec-exact parser in strict mode (any malformed line fails the test) and in
 * lenient mode fed the chunks exactly as they came off the socket; both must
 * agree.
 */
import { SseParser } from "@sluice/core"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import type * as Duration from "effect/Duration"
import type * as Scope from "effect/Scope"

export interface Frame {
  /** The event type, or `retry` for a `retry:` hint. */
  readonly name: string
  readonly data: string
  readonly id: string | undefined
  readonly retry: number | undefined
}

const fromRaw = (e: TestClient.RawEvent): Frame => ({
  name: e.retry !== undefined ? "retry" : e.event,
  data: e.data,
  id: e.id,
  retry: e.retry
})

/** Lenient (spec) parse of the chunks as received. */
export const parseLenient = (chunks: ReadonlyArray<Buffer>): Array<Frame> => {
  const out: Array<Frame> = []
  const parser = SseParser.makeParser({
    strict: false,
    onEvent: (e) => out.push({ name: e.event ?? "message", data: e.data, id: e.id, retry: undefined }),
    onRetry: (millis) => out.push({ name: "retry", data: "", id: undefined, retry: millis })
  })
  // Like the strict reading: only what a blank line completed, chunk by chunk as received.
  const end = Buffer.concat(chunks).lastIndexOf("\n\n")
  let left = end === -1 ? 0 : end + 2
  for (const chunk of chunks) {
    if (left <= 0) break
    const part = chunk.subarray(0, Math.min(left, chunk.length))
    left -= part.length
    parser.feed(new Uint8Array(part.buffer, part.byteOffset, part.byteLength))
  }
  return out
}

export interface Read {
  readonly status: number
  readonly headers: TestClient.Client["headers"]
  readonly frames: Array<Frame>
  readonly client: TestClient.Client
}

const both = (client: TestClient.Client): Array<Frame> => {
  const strict = client.events().map(fromRaw)
  const lenient = parseLenient(client.chunks)
  if (JSON.stringify(strict) !== JSON.stringify(lenient)) {
    throw new Error(
      `strict and lenient parsing disagree\nstrict:  ${JSON.stringify(strict)}\nlenient: ${JSON.stringify(lenient)}`
    )
  }
  return strict
}

/** The frames received so far, parsed both ways. */
export const framesOf = both

/** Opens `path` and reads until the server ends the response (at most `timeout`). */
export const readToEnd = (
  port: number,
  path: string,
  headers: Record<string, string> = {},
  timeout: Duration.Input = "15 seconds"
): Effect.Effect<Read, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* TestClient.open(port, path, headers)
    yield* client.ended.pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new Error(`${path} did not end within ${String(timeout)}; got:\n${client.text()}`))
      })
    )
    return { status: client.status, headers: client.headers, frames: both(client), client }
  })

/** Waits (at most `timeout`) until the client holds `n` complete frames. */
export const awaitFrames = (client: TestClient.Client, n: number, timeout: Duration.Input = "10 seconds") =>
  client.awaitFrames(n).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new Error(`fewer than ${n} frames within ${String(timeout)}; got:\n${client.text()}`))
    })
  )

export const names = (frames: ReadonlyArray<Frame>): Array<string> => frames.map((f) => f.name)

export const json = <A = any>(frame: Frame | undefined): A => {
  if (frame === undefined) throw new Error("no such frame")
  return JSON.parse(frame.data) as A
}

export const postJson = async (url: string, body: unknown): Promise<{ status: number; body: any }> => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed }
}
