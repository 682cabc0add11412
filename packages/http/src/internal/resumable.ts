/**
 * The routes behind `SseResumable`: `attach` (a resumable stream's record as
 * an SSE response, with the keyed routes' answer for an unknown id), `start`
 * (`201 {"id"}`, or `200` with `existing: true`) and `stop` (`204`).
 *
 * @internal
 */
import { Connection, Resumable, SseEvent } from "@sluice/core"
import * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as SseResponse from "../SseResponse.ts"
import type * as SseResumable from "../SseResumable.ts"
import type { SseServer } from "../SseServer.ts"
import { problem } from "./problem.ts"
import { attach as attachRoute } from "./response.ts"

const retryAfter = (seconds: number) => ({ "retry-after": String(seconds) })

// What EventSource clients expect for an unknown key: a stream that says so
// and ends (the keyed routes' sequence), or a 404 when asked for.
const notFound = (
  prepared: SseResponse.Prepared,
  options: SseResumable.AttachOptions<any, any>["notFound"]
): Effect.Effect<Connection.Connection | HttpServerResponse.HttpServerResponse, never, Scope.Scope> => {
  const settings = options ?? {}
  const message = settings.message ?? "not found"
  if (settings.status === 404) return Effect.succeed(problem(404, "Not Found", message))
  return Connection.make({
    ...prepared.connection,
    producer: Stream.fromIterable([
      ...prepared.preamble,
      SseEvent.make({ event: "error", data: JSON.stringify({ message }) })
    ]),
    terminal: { completed: () => prepared.closeFrames(settings.reason ?? "not_found") }
  })
}

/** @internal */
export const attach = <P = undefined, RA = never, RK = never>(
  collection: Resumable.Resumable,
  id: (info: SseResponse.StreamInfo<P>) => Effect.Effect<string, never, RK>,
  options: SseResumable.AttachOptions<P, RA> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA | RK> =>
  attachRoute<P, never, RK, RA>(
    (info, prepared) =>
      Effect.flatMap(id(info), (streamId) => {
        const { producer: _producer, terminal: _terminal, preamble: _preamble, ...connection } = prepared.connection
        return Resumable.attach(collection, streamId, {
          ...connection,
          lastEventId: info.lastEventId,
          preamble: prepared.preamble,
          closeFrames: prepared.closeFrames,
          end: options.end
        }).pipe(
          Effect.map((attached): Connection.Connection | HttpServerResponse.HttpServerResponse => attached.connection),
          Effect.catchTags({
            UnknownStreamError: () => notFound(prepared, options.notFound),
            InvalidStreamIdError: () => notFound(prepared, options.notFound),
            CoordinatorError: (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, retryAfter(2))),
            LogError: (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, retryAfter(2))),
            // The preamble is made of sluice's own valid frames.
            InvalidEventError: (e) => Effect.die(e)
          })
        )
      }),
    options
  )

const json = (body: unknown, status: number, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers: { "cache-control": "no-store", ...headers } })

/** @internal */
export const start = <R>(
  started: Effect.Effect<Resumable.Started, Resumable.StartError, R>,
  options: SseResumable.StartOptions = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  started.pipe(
    Effect.map((result) => {
      const location = options.location?.(result.id)
      const headers: Record<string, string> = location === undefined ? {} : { location }
      return result._tag === "Started"
        ? json({ id: result.id }, 201, headers)
        : json(
          { id: result.id, existing: true, status: result.status._tag === "Running" ? "running" : "ended" },
          200,
          headers
        )
    }),
    Effect.catchTags({
      StreamLimitError: (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, retryAfter(5))),
      InvalidStreamIdError: (e) => Effect.succeed(problem(400, "Bad Request", e.message)),
      CoordinatorError: (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, retryAfter(2))),
      LogError: (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, retryAfter(2)))
    })
  )

/** @internal */
export const stop = <R>(
  collection: Resumable.Resumable,
  id: Effect.Effect<string, never, R>,
  reason?: string
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  Effect.flatMap(id, (streamId) =>
    Resumable.stop(collection, streamId, reason).pipe(
      Effect.map((result) =>
        result._tag === "Requested"
          ? json({ id: streamId, status: "stop_requested" }, 202)
          : HttpServerResponse.empty({ status: 204 })
      ),
      Effect.catchTags({
        UnknownStreamError: (e) => Effect.succeed(problem(404, "Not Found", e.message)),
        InvalidStreamIdError: (e) => Effect.succeed(problem(404, "Not Found", e.message)),
        CoordinatorError: (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, retryAfter(2))),
        // The route's own reason: a programming error.
        InvalidStopReasonError: (e) => Effect.die(e)
      })
    ))
