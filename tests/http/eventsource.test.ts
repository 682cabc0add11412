// Interop with `eventsource`, a WHATWG-compliant client nobody here wrote: it
// reconnects on its own and sends Last-Event-ID; the ids it sees must have no
// gap and no duplicate across drops.
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { describe, expect, it } from "@effect/vitest"
import { SseEvent } from "@sluice/core"
import { SseResponse } from "@sluice/http"
import { TestServer } from "@sluice/http/testing"
import { Deferred, Effect, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { EventSource } from "eventsource"

// Resumes after the client's last id; every connection ends after 7 events,
// either cleanly (connection_close) or by cutting the socket.
const resumable = (cut: boolean) =>
  SseResponse.stream(({ lastEventId, request }) => {
    const from = Number(lastEventId ?? 0)
    return Stream.fromSchedule(Schedule.spaced("2 millis")).pipe(
      Stream.take(7),
      Stream.map((n) => SseEvent.make({ id: String(from + n + 1), data: `n=${from + n + 1}` })),
      Stream.concat(
        cut
          ? Stream.fromEffect(Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()))
            .pipe(Stream.drain)
          : Stream.empty
      )
    )
  }, { lifecycle: { retry: { base: 20, jitter: 0.2 } } })

const collect = (url: string, until: number) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new EventSource(url)),
    (source) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void>()
        const ids: Array<string> = []
        let opens = 0
        source.addEventListener("connection_open", () => opens++)
        source.addEventListener("message", (e) => {
          ids.push(e.lastEventId)
          if (Number(e.lastEventId) >= until) Deferred.doneUnsafe(done, Effect.void)
        })
        yield* Deferred.await(done)
        return { ids, opens }
      }),
    (source) => Effect.sync(() => source.close())
  )

describe("eventsource (npm) against sluice", () => {
  for (const cut of [false, true]) {
    it.live(
      `reconnects with Last-Event-ID after ${cut ? "a cut socket" : "a clean end"}: no gap, no duplicate`,
      () =>
        Effect.gen(function*() {
          const { port } = yield* TestServer.serve(HttpRouter.add("GET", "/events", resumable(cut)))
          const { ids, opens } = yield* collect(`http://127.0.0.1:${port}/events`, 30)
          expect(ids.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)))
          expect(opens).toBeGreaterThanOrEqual(5)
        }),
      20_000
    )
  }
})
