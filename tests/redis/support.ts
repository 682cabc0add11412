/**
 * Clients and helpers of the multi-process tests: sluice's `SseClient` and
 * the `eventsource` npm client collecting a stream, a raw reader for keyed
 * streams (which end), and JSON posts.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type { SseEvent } from "@sluice/core"
import { SseClient } from "@sluice/http"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { EventSource } from "eventsource"

export interface Received {
  readonly id: string
  readonly event: string
  readonly data: string
}

/** A client collecting a stream until it has `until` events of type `n`. */
export interface Collector {
  readonly name: string
  readonly events: Array<Received>
  /** The `n` events' data, in order. */
  readonly data: () => Array<string>
  readonly opens: () => number
  /** Resolves once the first `connection_open` arrived. */
  readonly opened: Effect.Effect<void>
  /** Resolves once `until` `n` events arrived. */
  readonly done: Effect.Effect<void>
  /** Resolves once an event satisfying `predicate` arrived. */
  readonly until: (predicate: (event: Received) => boolean) => Effect.Effect<void>
}

const collector = (name: string, until: number) => {
  const events: Array<Received> = []
  const opened = Deferred.makeUnsafe<void>()
  const done = Deferred.makeUnsafe<void>()
  let opens = 0
  let count = 0
  const waiting = new Set<{ readonly predicate: (e: Received) => boolean; readonly done: Deferred.Deferred<void> }>()
  const push = (e: Received) => {
    events.push(e)
    for (const w of waiting) {
      if (w.predicate(e)) {
        waiting.delete(w)
        Deferred.doneUnsafe(w.done, Effect.void)
      }
    }
    if (e.event === "connection_open") {
      opens++
      Deferred.doneUnsafe(opened, Effect.void)
    }
    if (e.event === "n" && ++count >= until) Deferred.doneUnsafe(done, Effect.void)
  }
  const collected: Collector = {
    name,
    events,
    data: () => events.filter((e) => e.event === "n").map((e) => e.data),
    opens: () => opens,
    opened: Deferred.await(opened),
    done: Deferred.await(done),
    until: (predicate) =>
      Effect.suspend(() => {
        if (events.some(predicate)) return Effect.void
        const arrived = Deferred.makeUnsafe<void>()
        waiting.add({ predicate, done: arrived })
        return Deferred.await(arrived)
      })
  }
  return { push, collected }
}

/** sluice's `SseClient` on `url`, in the current scope. */
export const sluiceClient = (
  url: string,
  until: number,
  options: SseClient.ConnectOptions = {}
): Effect.Effect<Collector, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { collected, push } = collector(`sluice ${url}`, until)
    yield* SseClient.connect(url, { retry: 50, ...options }).pipe(
      Stream.runForEach((e: SseEvent.Event) =>
        Effect.sync(() => push({ id: e.id ?? "", event: e.event ?? "message", data: e.data }))
      ),
      Effect.provide(NodeHttpClient.layerNodeHttp),
      Effect.ignore,
      Effect.forkScoped
    )
    return collected
  })

/** The `eventsource` npm client on `url`, in the current scope. */
export const eventSourceClient = (url: string, until: number): Effect.Effect<Collector, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { collected, push } = collector(`eventsource ${url}`, until)
    const source = yield* Effect.acquireRelease(
      Effect.sync(() => new EventSource(url)),
      (s) => Effect.sync(() => s.close())
    )
    for (const type of ["connection_open", "n", "replay_gap", "connection_close"]) {
      source.addEventListener(type, (e) => push({ id: e.lastEventId, event: type, data: e.data }))
    }
    return collected
  })

/** POSTs JSON; the status and the decoded answer. */
export const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body)
      })
      return { status: response.status, body: (await response.json()) as Record<string, unknown> }
    },
    catch: (e) => e as Error
  })

/** A client of {@link readOnce}. */
export interface Reader {
  readonly opened: Effect.Effect<void>
  readonly events: () => Array<Received>
  readonly ended: Effect.Effect<void>
  /** Resolves once the events so far satisfy `predicate`. */
  readonly until: (predicate: (events: ReadonlyArray<Received>) => boolean) => Effect.Effect<void>
}

/**
 * Reads a stream that the server ends (a keyed stream): its events until the
 * end, without reconnecting. `opened` resolves at `connection_open`. With
 * `headers` (a `Last-Event-ID`), they are sent; with `leaveWhen`, the client
 * leaves (aborts) as soon as its events satisfy it, and `ended` resolves.
 */
export const readOnce = (url: string, options: {
  readonly headers?: Record<string, string> | undefined
  readonly leaveWhen?: ((events: ReadonlyArray<Received>) => boolean) | undefined
} = {}): Effect.Effect<Reader, never, Scope.Scope> =>
  Effect.gen(function*() {
    const events: Array<Received> = []
    const opened = Deferred.makeUnsafe<void>()
    const ended = Deferred.makeUnsafe<void>()
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    let left = false
    const waiting = new Set<
      { readonly predicate: (e: ReadonlyArray<Received>) => boolean; readonly done: Deferred.Deferred<void> }
    >()
    const wake = () => {
      for (const w of waiting) {
        if (!w.predicate(events)) continue
        waiting.delete(w)
        Deferred.doneUnsafe(w.done, Effect.void)
      }
    }
    const parse = (block: string) => {
      // What came after the client left is not what it saw.
      if (left) return
      const field = (name: string) =>
        block.split("\n").filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart())
      const event = field("event")[0] ?? "message"
      if (block.startsWith(":") || field("data").length === 0) return
      events.push({ id: field("id")[0] ?? "", event, data: field("data").join("\n") })
      if (event === "connection_open") Deferred.doneUnsafe(opened, Effect.void)
      wake()
      if (options.leaveWhen?.(events) === true) {
        left = true
        controller.abort()
      }
    }
    void (async () => {
      try {
        const response = await fetch(url, { signal: controller.signal, headers: options.headers ?? {} })
        const decoder = new TextDecoder()
        let buffer = ""
        for await (const chunk of response.body!) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true })
          let end: number
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            parse(buffer.slice(0, end))
            buffer = buffer.slice(end + 2)
          }
        }
      } catch {
        // aborted, or the node died
      }
      Deferred.doneUnsafe(ended, Effect.void)
    })()
    return {
      opened: Deferred.await(opened),
      events: () => events,
      ended: Deferred.await(ended),
      until: (predicate) =>
        Effect.suspend(() => {
          if (predicate(events)) return Effect.void
          const done = Deferred.makeUnsafe<void>()
          waiting.add({ predicate, done })
          return Deferred.await(done)
        })
    }
  })
