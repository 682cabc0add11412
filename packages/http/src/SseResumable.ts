/**
 * HTTP routes for resumable streams (`Resumable` from `@sluice/core`): the
 * three endpoints of a resumable LLM answer.
 *
 * | endpoint | helper | answers |
 * | --- | --- | --- |
 * | `POST /answers` (your body, your checks) | {@link start} | `201 {"id"}`; `200 {"id","existing":true,…}` for an id that exists (a retried request); `503` + `Retry-After` when the node is full or the coordinator does not answer; `400` for an invalid id |
 * | `GET /answers/:id/stream` | {@link attach} | the SSE stream: `retry:`, `connection_open`, the record after `Last-Event-ID` (header or `?lastEventId=`), live events, the end's frames, `connection_close` with the reason |
 * | `DELETE /answers/:id` | {@link stop} | `204` once the stream has ended (stopped now, or before); `404` for an unknown id; `202` when the owner on another node did not confirm in time |
 *
 * The stream route is an `SseResponse` route: it has the server's limits,
 * heartbeats, write timeout, authorization hook, lifecycle events and fast
 * shutdown. Its `connection_close` reason is the end's: `completed`,
 * `failed` (after an `error` event with the safe message), `stopped` (or the
 * stop's own reason), `expired`, `producer_lost`; `unavailable` when the
 * record could not be read (the client may come back); `shutdown` when this
 * server shuts down (the client comes back, and resumes). An unknown id gets
 * the keyed routes' not-found sequence (`connection_open`, `error`,
 * `connection_close` with `not_found`), or a `404` if you ask for one.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schedule, Stream } from "effect"
 * import { HttpRouter, HttpServerRequest } from "effect/http"
 * import { Resumable, SseEvent } from "@sluice/core"
 * import { SseResumable } from "@sluice/http"
 *
 * const answer = (prompt: string) =>
 *   Stream.fromIterable(`You asked: ${prompt}`.split(" ")).pipe(
 *     Stream.schedule(Schedule.spaced("50 millis")),
 *     Stream.map((text) => SseEvent.make({ event: "token", data: JSON.stringify({ text: `${text} ` }) }))
 *   )
 *
 * const routes = (answers: Resumable.Resumable) =>
 *   Layer.mergeAll(
 *     HttpRouter.add("POST", "/answers", Effect.gen(function*() {
 *       const { prompt } = (yield* Effect.orDie(HttpServerRequest.HttpServerRequest.pipe(
 *         Effect.flatMap((request) => request.json)
 *       ))) as { prompt: string }
 *       return yield* SseResumable.start(Resumable.start(answers, crypto.randomUUID(), answer(prompt)))
 *     })),
 *     HttpRouter.add("GET", "/answers/:id/stream", SseResumable.attach(answers, () =>
 *       Effect.map(HttpRouter.params, (p) => p["id"] ?? ""))),
 *     HttpRouter.add("DELETE", "/answers/:id", SseResumable.stop(answers,
 *       Effect.map(HttpRouter.params, (p) => p["id"] ?? "")))
 *   )
 * ```
 *
 * @since 0.2.0
 */
import type { Resumable, SseEvent } from "@sluice/core"
import type * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import type { HttpServerResponse } from "effect/http/HttpServerResponse"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/resumable.ts"
import type * as SseResponse from "./SseResponse.ts"
import type { SseServer } from "./SseServer.ts"

/**
 * Options of the stream route: those of any SSE route, plus the not-found
 * answer and the end's frames.
 *
 * @since 0.2.0
 * @category models
 */
export interface AttachOptions<P = undefined, RA = never> extends SseResponse.Options<P, RA> {
  /**
   * Answer for an unknown id. Default: status 200 with `connection_open`, an
   * `error` event (`{"message": "not found"}`) and `connection_close` with
   * reason `not_found`, as keyed routes do; `status: 404` answers a
   * problem-details 404 instead.
   */
  readonly notFound?: SseResponse.KeyedOptions["notFound"]
  /**
   * Frames written at the end, before `connection_close` (a `done` event);
   * a failed stream's `error` event with its safe message comes first.
   * Default: none.
   */
  readonly end?: ((end: Resumable.End) => ReadonlyArray<SseEvent.Frame>) | undefined
}

/**
 * Options of {@link start}.
 *
 * @since 0.2.0
 * @category models
 */
export interface StartOptions {
  /** A `Location` header for the answer (the stream's URL). Default: none. */
  readonly location?: ((id: string) => string) | undefined
}

/**
 * The stream route: attaches the client to the stream whose id `id` reads
 * from the request (a path parameter), resuming after its `Last-Event-ID`
 * header or `?lastEventId=` query parameter.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpRouter } from "effect/http"
 * import type { Resumable } from "@sluice/core"
 * import { SseEvent } from "@sluice/core"
 * import { SseResumable } from "@sluice/http"
 *
 * const route = (answers: Resumable.Resumable) =>
 *   HttpRouter.add("GET", "/answers/:id/stream", SseResumable.attach(answers, () =>
 *     Effect.map(HttpRouter.params, (p) => p["id"] ?? ""), {
 *     heartbeat: "10 seconds",
 *     end: (end) => [SseEvent.make({ event: "done", data: JSON.stringify({ reason: end._tag }) })]
 *   }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const attach: <P = undefined, RA = never, RK = never>(
  collection: Resumable.Resumable,
  id: (info: SseResponse.StreamInfo<P>) => Effect.Effect<string, never, RK>,
  options?: AttachOptions<P, RA>
) => Effect.Effect<HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA | RK> = internal.attach

/**
 * The start route's answer for a `Resumable.start`: `201 {"id"}` when it
 * started the stream, `200 {"id", "existing": true, "status"}` when the id
 * existed (nothing was started), and problem-details refusals for its
 * errors (`503` with `Retry-After` for a full node or an unavailable
 * coordinator or store, `400` for an invalid id). Read and check the body
 * yourself first.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Resumable, SseEvent } from "@sluice/core"
 * import { SseResumable } from "@sluice/http"
 *
 * const startAnswer = (answers: Resumable.Resumable, id: string) =>
 *   SseResumable.start(
 *     Resumable.start(answers, id, Stream.make(SseEvent.make({ event: "token", data: "{\"text\":\"hi\"}" }))),
 *     { location: (id) => `/answers/${id}/stream` }
 *   )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const start: <R>(
  started: Effect.Effect<Resumable.Started, Resumable.StartError, R>,
  options?: StartOptions
) => Effect.Effect<HttpServerResponse, never, R> = internal.start

/**
 * The stop route: stops the stream whose id `id` reads from the request,
 * from whichever node the request reaches. `204` once it has ended (by this
 * stop or before), `404` (problem details) for an unknown id, `202` when
 * its owner on another node did not confirm within two leases, `503` when
 * the coordinator does not answer.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpRouter } from "effect/http"
 * import type { Resumable } from "@sluice/core"
 * import { SseResumable } from "@sluice/http"
 *
 * const route = (answers: Resumable.Resumable) =>
 *   HttpRouter.add("DELETE", "/answers/:id", SseResumable.stop(answers, Effect.map(HttpRouter.params, (p) => p["id"] ?? "")))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const stop: <R>(
  collection: Resumable.Resumable,
  id: Effect.Effect<string, never, R>,
  reason?: string
) => Effect.Effect<HttpServerResponse, never, R> = internal.stop
