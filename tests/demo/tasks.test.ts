// The demo's task streams, black-box over HTTP against the real server (a
// child process started as `pnpm demo` would): event order and payloads,
// unknown ids, pending progress, replacement, and reconnecting after the end.
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { SseClient } from "@sluice/http"
import { TestClient } from "@sluice/http/testing"
import { Effect, Stream } from "effect"
import * as Http from "node:http"
import { type DemoProcess, startDemo } from "./DemoProcess.ts"
import { awaitFrames, type Frame, framesOf, json, names, postJson, readToEnd } from "./support.ts"

interface TaskEvent {
  readonly event_type: "progress_update" | "task_completed" | "task_failed"
  readonly task_id: string
  readonly timestamp: string
  readonly data: { readonly text: string; readonly progress: number }
}

let demo: DemoProcess
beforeAll(async () => {
  demo = await startDemo()
})
afterAll(async () => {
  await demo?.stop()
})

const createTask = (spec: { steps: number; failAt?: number; stepMs?: number }) =>
  Effect.promise(() => postJson(`${demo.url}/api/tasks`, spec)).pipe(
    Effect.map(({ status, body }) => {
      expect(status).toBe(201)
      expect(typeof body?.id).toBe("string")
      expect(body.id.length).toBeGreaterThan(0)
      return body.id as string
    })
  )

const streamPath = (id: string) => `/api/tasks/${encodeURIComponent(id)}/stream`

const taskEvents = (frames: ReadonlyArray<Frame>): Array<TaskEvent> =>
  frames.filter((f) => f.name === "task_event").map((f) => json<TaskEvent>(f))

/** The shape every task_event must have, whatever its type. */
const expectWellFormed = (events: ReadonlyArray<TaskEvent>, id: string) => {
  let previousTime = 0
  let previousProgress = 0
  for (const e of events) {
    expect(Object.keys(e).toSorted()).toEqual(["data", "event_type", "task_id", "timestamp"])
    expect(["progress_update", "task_completed", "task_failed"]).toContain(e.event_type)
    expect(e.task_id).toBe(id)
    const time = Date.parse(e.timestamp)
    expect(Number.isNaN(time)).toBe(false)
    expect(time).toBeGreaterThanOrEqual(previousTime)
    previousTime = time
    expect(typeof e.data.text).toBe("string")
    expect(e.data.text.length).toBeGreaterThan(0)
    expect(e.data.progress).toBeGreaterThanOrEqual(previousProgress)
    expect(e.data.progress).toBeLessThanOrEqual(100)
    previousProgress = e.data.progress
  }
}

/**
 * A task of `steps` steps reports every step it ran, once, with progress the
 * share of steps done (a queued event at 0 % may come first).
 */
const expectEveryStep = (events: ReadonlyArray<TaskEvent>, steps: number, ran: number) => {
  const reported = events.map((e) => e.data.progress).filter((p, i) => !(i === 0 && p === 0))
  expect(reported).toEqual(Array.from({ length: ran }, (_, k) => Math.round(((k + 1) / steps) * 100)))
}

/** retry hint, connection_open, task events, connection_close: nothing else, in that order. */
const expectLifecycle = (frames: ReadonlyArray<Frame>, closeReason: string) => {
  const kinds = names(frames)
  expect(kinds[0]).toBe("retry")
  expect(kinds[1]).toBe("connection_open")
  expect(kinds.at(-1)).toBe("connection_close")
  expect(kinds.slice(2, -1).every((k) => k === "task_event")).toBe(true)
  const open = json<{ connection_id: string }>(frames[1])
  expect(typeof open.connection_id).toBe("string")
  const close = json<{ reason: string; connection_id: string }>(frames.at(-1))
  expect(close).toEqual({ reason: closeReason, connection_id: open.connection_id })
}

describe("demo: task streams over HTTP", () => {
  it.live("a task streams its progress in order, then task_completed and connection_close", () =>
    Effect.gen(function*() {
      const id = yield* createTask({ steps: 4, stepMs: 30 })
      const { status, headers, frames } = yield* readToEnd(demo.port, streamPath(id))
      expect(status).toBe(200)
      expect(headers["content-type"]).toMatch(/^text\/event-stream/)
      expectLifecycle(frames, "task_completed")
      const events = taskEvents(frames)
      expectWellFormed(events, id)
      expectEveryStep(events, 4, 4)
      expect(events.slice(0, -1).every((e) => e.event_type === "progress_update")).toBe(true)
      expect(events.at(-1)?.event_type).toBe("task_completed")
      expect(events.at(-1)?.data.progress).toBe(100)
    }))

  it.live("a failing task ends with task_failed at its step and closes with reason task_failed", () =>
    Effect.gen(function*() {
      const id = yield* createTask({ steps: 4, failAt: 2, stepMs: 20 })
      const { frames } = yield* readToEnd(demo.port, streamPath(id))
      expectLifecycle(frames, "task_failed")
      const events = taskEvents(frames)
      expectWellFormed(events, id)
      expect(events.at(-1)?.event_type).toBe("task_failed")
      expect(events.slice(0, -1).every((e) => e.event_type === "progress_update")).toBe(true)
      // It failed at step 2 of 4: steps 1 and 2 reported, nothing after.
      expectEveryStep(events, 4, 2)
      expect(events.some((e) => e.event_type === "task_completed")).toBe(false)
    }))

  it.live("progress sent before anyone connects waits and is delivered on connect, first", () =>
    Effect.gen(function*() {
      // stepMs 0: the whole task runs while nobody is connected.
      const id = yield* createTask({ steps: 5, stepMs: 0 })
      const { frames } = yield* readToEnd(demo.port, streamPath(id))
      expectLifecycle(frames, "task_completed")
      const events = taskEvents(frames)
      expectWellFormed(events, id)
      // The queued event, sent before the 201 answer, comes first; no step is lost.
      expect(events[0]).toMatchObject({ event_type: "progress_update", data: { progress: 0 } })
      expectEveryStep(events, 5, 5)
      expect(events.at(-1)).toMatchObject({ event_type: "task_completed", data: { progress: 100 } })
    }))

  it.live("after the task ended, a reconnecting client gets the final event and the close again at once", () =>
    Effect.gen(function*() {
      const id = yield* createTask({ steps: 2, stepMs: 10 })
      const first = yield* readToEnd(demo.port, streamPath(id))
      const final = taskEvents(first.frames).at(-1)
      expect(final?.event_type).toBe("task_completed")
      for (let i = 0; i < 2; i++) {
        const again = yield* readToEnd(demo.port, streamPath(id), {}, "5 seconds")
        expect(names(again.frames)).toEqual(["retry", "connection_open", "task_event", "connection_close"])
        expect(taskEvents(again.frames)).toEqual([final])
        expectLifecycle(again.frames, "task_completed")
      }
    }))

  it.live("an unknown task id gets connection_open, error, connection_close task_not_found with status 200", () =>
    Effect.gen(function*() {
      const { status, headers, frames } = yield* readToEnd(demo.port, streamPath("no-such-task"))
      expect(status).toBe(200)
      expect(headers["content-type"]).toMatch(/^text\/event-stream/)
      expect(names(frames).filter((n) => n !== "retry")).toEqual(["connection_open", "error", "connection_close"])
      const open = json<{ connection_id: string }>(frames.find((f) => f.name === "connection_open"))
      expect(typeof json<{ message: unknown }>(frames.find((f) => f.name === "error")).message).toBe("string")
      expect(json(frames.at(-1))).toEqual({ reason: "task_not_found", connection_id: open.connection_id })
    }))

  it.live("a second client replaces the first: the first gets connection_close replaced, the second goes on", () =>
    Effect.gen(function*() {
      const id = yield* createTask({ steps: 10, stepMs: 100 })
      const first = yield* TestClient.open(demo.port, streamPath(id))
      // retry, connection_open and at least one task event.
      yield* awaitFrames(first, 3)
      const second = yield* TestClient.open(demo.port, streamPath(id))
      yield* first.ended.pipe(Effect.timeout("10 seconds"))
      const firstFrames = framesOf(first)
      expectLifecycle(firstFrames, "replaced")
      const firstEvents = taskEvents(firstFrames)
      expect(firstEvents.length).toBeGreaterThan(0)

      // The replaced connection's end never closes its successor: it runs to the end.
      yield* second.ended.pipe(Effect.timeout("15 seconds"))
      const secondFrames = framesOf(second)
      expectLifecycle(secondFrames, "task_completed")
      const secondEvents = taskEvents(secondFrames)
      expectWellFormed([...firstEvents, ...secondEvents], id)
      expect(secondEvents.at(-1)?.event_type).toBe("task_completed")
      expect(json(secondFrames[1]).connection_id).not.toBe(json(firstFrames[1]).connection_id)
      // What the first client got is not sent to the second again.
      const seen = new Set(firstEvents.map((e) => JSON.stringify(e)))
      expect(secondEvents.filter((e) => seen.has(JSON.stringify(e)))).toEqual([])
    }))

  for (const strict of [true, false]) {
    it.live(`sluice's SseClient (${strict ? "strict" : "lenient"}) reads a task stream to its close`, () =>
      Effect.gen(function*() {
        const id = yield* createTask({ steps: 3, stepMs: 20 })
        const events = yield* SseClient.connect(`${demo.url}${streamPath(id)}`, { strict, maxAttempts: 1 }).pipe(
          Stream.takeUntil((e) => e.event === "connection_close"),
          Stream.runCollect,
          Effect.timeout("10 seconds")
        )
        const kinds = events.map((e) => e.event ?? "message")
        expect(kinds[0]).toBe("connection_open")
        expect(kinds.at(-1)).toBe("connection_close")
        const tasks = events.filter((e) => e.event === "task_event").map((e) => JSON.parse(e.data) as TaskEvent)
        expectWellFormed(tasks, id)
        expectEveryStep(tasks, 3, 3)
        expect(tasks.at(-1)?.event_type).toBe("task_completed")
        expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ reason: "task_completed" })
      }).pipe(Effect.provide(NodeHttpClient.layerNodeHttp)))
  }

  it.live("POST /api/tasks refuses bad input with problem details", () =>
    Effect.gen(function*() {
      for (
        const body of [
          "{not json",
          { steps: 0 },
          { steps: 3, extra: true },
          { steps: "3" },
          { steps: 3, failAt: 4 }
        ]
      ) {
        const { status, body: problem } = yield* Effect.promise(() => postJson(`${demo.url}/api/tasks`, body))
        expect(status, JSON.stringify(body)).toBe(400)
        expect(problem).toMatchObject({ status: 400 })
        expect(typeof problem.detail === "string" || typeof problem.title === "string").toBe(true)
      }
    }))

  it.live("a chunked body (no content-length) over the limit is cut while it is read: 400, and the server goes on", () =>
    Effect.gen(function*() {
      // The body never ends (at most 4 MiB in 16 KiB chunks, then nothing):
      // only a server that stops reading at the limit can answer it.
      const status = yield* Effect.promise(() =>
        new Promise<number>((resolve, reject) => {
          const request = Http.request(`${demo.url}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json" }
          })
          let answered = false
          request.on("response", (response) => {
            answered = true
            response.resume()
            resolve(response.statusCode ?? 0)
            request.destroy()
          })
          request.on("error", (error) => {
            if (!answered) reject(error)
          })
          const chunk = Buffer.alloc(16 * 1024, "a")
          let sent = 0
          const pump = (): void => {
            if (answered) return // (answers arrive between pumps, never during one)
            while (sent < 256) {
              sent++
              if (!request.write(chunk)) return void request.once("drain", pump)
            }
          }
          pump()
        })
      ).pipe(Effect.timeout("10 seconds"))
      expect(status).toBe(400)
      const { status: after } = yield* Effect.promise(() => postJson(`${demo.url}/api/tasks`, { steps: 1 }))
      expect(after).toBe(201)
    }))
})
