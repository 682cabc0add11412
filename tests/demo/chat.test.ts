// The demo's resumable chat, black-box over HTTP against the real server (a
// child process started as `pnpm demo` would): the start, stream, resume and
// stop endpoints other tools rely on, exactly as specified.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import { type DemoProcess, startDemo } from "./DemoProcess.ts"
import { awaitFrames, framesOf, json, names, postJson, readToEnd } from "./support.ts"

let demo: DemoProcess
beforeAll(async () => {
  // Answers of about two seconds: long enough to stop or resume one in the middle.
  demo = await startDemo({ env: { DEMO_CHAT_PAUSE_MS: "100", DEMO_CHAT_RATE: "0" } })
})
afterAll(async () => {
  await demo?.stop()
})

const ask = (prompt: string, extra: Record<string, unknown> = {}) =>
  Effect.promise(() => postJson(`${demo.url}/api/chat`, { prompt, ...extra }))

const started = (prompt: string) =>
  Effect.map(ask(prompt), ({ status, body }) => {
    expect(status).toBe(201)
    expect(Object.keys(body)).toEqual(["id"])
    expect(typeof body.id).toBe("string")
    return body.id as string
  })

const streamPath = (id: string) => `/api/chat/${encodeURIComponent(id)}/stream`

const del = (id: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${demo.url}/api/chat/${encodeURIComponent(id)}`, { method: "DELETE" })
    return { status: response.status, type: response.headers.get("content-type"), body: await response.text() }
  })

const text = (frames: ReadonlyArray<{ name: string; data: string }>) =>
  frames.filter((f) => f.name === "token").map((f) => JSON.parse(f.data).text as string).join("")

describe("demo chat: resumable", () => {
  it.live("POST answers 201 {id}; the stream: token {text}…, done, connection_close completed", () =>
    Effect.gen(function*() {
      const id = yield* started("backpressure")
      const { status, headers, frames } = yield* readToEnd(demo.port, streamPath(id))
      expect(status).toBe(200)
      expect(headers["content-type"]).toBe("text/event-stream; charset=utf-8")
      const kinds = names(frames)
      expect(kinds.slice(0, 2)).toEqual(["retry", "connection_open"])
      expect(kinds.slice(-2)).toEqual(["done", "connection_close"])
      expect(new Set(kinds.slice(2, -2))).toEqual(new Set(["token"]))
      for (const f of frames.filter((frame) => frame.name === "token")) {
        expect(Object.keys(json(f))).toEqual(["text"])
        expect(f.id).toMatch(/^[0-9a-z]+-\d+$/)
      }
      expect(text(frames)).toContain("backpressure")
      expect(json(frames.at(-2))).toEqual({ reason: "completed" })
      expect(json(frames.at(-1))).toMatchObject({ reason: "completed" })
    }))

  it.live("resumes after Last-Event-ID (header or ?lastEventId=) exactly; a finished answer reopens whole", () =>
    Effect.scoped(Effect.gen(function*() {
      const id = yield* started("resuming")
      const first = yield* TestClient.open(demo.port, streamPath(id))
      yield* awaitFrames(first, 8)
      first.destroy()
      const seen = framesOf(first).filter((f) => f.name === "token")
      const last = seen.at(-1)!.id!
      const byHeader = yield* readToEnd(demo.port, streamPath(id), { "last-event-id": last })
      const byQuery = yield* readToEnd(demo.port, `${streamPath(id)}?lastEventId=${encodeURIComponent(last)}`)
      const whole = yield* readToEnd(demo.port, streamPath(id))
      expect(text(seen) + text(byHeader.frames)).toBe(text(whole.frames))
      expect(text(byQuery.frames)).toBe(text(byHeader.frames))
      expect(byHeader.frames.filter((f) => f.name === "token")[0]!.id).not.toBe(last)
      expect(json(whole.frames.at(-1))).toMatchObject({ reason: "completed" })
    })))

  it.live("DELETE stops a running answer (204): done and connection_close say stopped", () =>
    Effect.scoped(Effect.gen(function*() {
      const id = yield* started("stopping")
      const live = yield* TestClient.open(demo.port, streamPath(id))
      yield* awaitFrames(live, 4)
      const stopped = yield* del(id)
      expect([stopped.status, stopped.body]).toEqual([204, ""])
      yield* live.ended
      const frames = framesOf(live)
      expect(names(frames).slice(-2)).toEqual(["done", "connection_close"])
      expect(json(frames.at(-2))).toEqual({ reason: "stopped" })
      expect(json(frames.at(-1))).toMatchObject({ reason: "stopped" })
      // The record of a stopped answer stays readable, with the same end.
      const again = yield* readToEnd(demo.port, streamPath(id))
      expect(text(again.frames)).toBe(text(frames))
      expect(json(again.frames.at(-1))).toMatchObject({ reason: "stopped" })
    })))

  it.live("unknown ids: DELETE 404 with problem details; the stream gets the keyed not-found sequence", () =>
    Effect.scoped(Effect.gen(function*() {
      const gone = yield* del("no-such-chat")
      expect(gone.status).toBe(404)
      expect(gone.type).toBe("application/problem+json")
      expect(JSON.parse(gone.body)).toMatchObject({ status: 404, title: "Not Found" })
      const { status, frames } = yield* readToEnd(demo.port, streamPath("no-such-chat"))
      expect(status).toBe(200)
      expect(names(frames)).toEqual(["retry", "connection_open", "error", "connection_close"])
      expect(json(frames.at(-1))).toMatchObject({ reason: "not_found" })
    })))

  it.live("the POST is JSON only, checked, and idempotent with an id of the client's choosing", () =>
    Effect.gen(function*() {
      const form = yield* Effect.promise(() =>
        fetch(`${demo.url}/api/chat`, { method: "POST", body: "prompt=x", headers: { "content-type": "text/plain" } })
      )
      expect(form.status).toBe(415)
      expect((yield* ask("x", { extra: true })).status).toBe(400)
      expect((yield* ask("x", { id: "bad id" })).status).toBe(400)
      const mine = `retry-${Date.now().toString(36)}`
      const first = yield* ask("twice", { id: mine })
      const second = yield* ask("twice", { id: mine })
      expect([first.status, first.body]).toEqual([201, { id: mine }])
      expect(second.status).toBe(200)
      expect(second.body).toMatchObject({ id: mine, existing: true })
    }))
})
