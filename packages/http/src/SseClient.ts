/**
 * An SSE client that survives real networks: `connect` opens a
 * `text/event-stream` with effect's `HttpClient` and returns the events as a
 * `Stream`, reconnecting as the WHATWG `EventSource` does, with what a
 * server-side client needs on top.
 *
 * - Any request: a URL, or an `HttpClientRequest` with your own method, body
 *   and headers (authorization, API keys), unlike the browser `EventSource`.
 * - Spec behaviour: `Accept: text/event-stream`, redirects followed,
 *   `Last-Event-ID` sent on reconnect, `retry:` honoured, a normal end of a
 *   200 response reconnects, 204 ends the stream, any other status or a wrong
 *   `Content-Type` fails it with a typed error.
 * - Backoff: attempts that deliver no event back off exponentially with
 *   jitter, capped; a delivered event resets it. 5xx/429 can be retried too,
 *   honouring `Retry-After` (`retryStatus`).
 * - Idle timeout: a connection that receives no bytes (not even a heartbeat
 *   comment) for `idleTimeout` is half-dead: it is closed and replaced.
 * - Observable state: `onStateChange` sees connecting / open / reconnecting
 *   (attempt and delay) / closed; {@link connectWithState} keeps it in a
 *   `SubscriptionRef` for UIs.
 * - Clean interruption: stopping the stream aborts the request, which
 *   destroys its socket; no fiber is left behind.
 *
 * Provide an `HttpClient`, e.g. `NodeHttpClient.layerNodeHttp` from
 * `@effect/platform-node`. Jitter draws from effect's `Random` service and
 * delays use `Clock`, so tests can make both deterministic.
 *
 * @since 0.1.0
 */
import type { SseEvent, SseParser } from "@sluice/core"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { HttpClient, HttpClientRequest } from "effect/http"
import type * as Stream from "effect/Stream"
import type * as SubscriptionRef from "effect/SubscriptionRef"
import * as internal from "./internal/client.ts"
import type { SseConnectionError, SseContentTypeError, SseStatusError } from "./internal/clientErrors.ts"

export {
  /**
   * A connection was lost or could not be made (reason `transport`,
   * `idle-timeout`, `ended` or `invalid-request`).
   *
   * @since 0.1.0
   * @category errors
   */
  SseConnectionError,
  /**
   * A 200 response whose `Content-Type` is not `text/event-stream`.
   *
   * @since 0.1.0
   * @category errors
   */
  SseContentTypeError,
  /**
   * A response status other than 200 or 204.
   *
   * @since 0.1.0
   * @category errors
   */
  SseStatusError
} from "./internal/clientErrors.ts"

export type {
  /**
   * Why a connection was lost or not made.
   *
   * @since 0.1.0
   * @category errors
   */
  ConnectionErrorReason
} from "./internal/clientErrors.ts"

/**
 * Everything that can end a client stream with a failure: a fatal response
 * (status, content type), a connection error once `maxAttempts` is used up,
 * or a parser error (a limit, or malformed input in strict mode).
 *
 * @since 0.1.0
 * @category errors
 */
export type SseClientError =
  | SseStatusError
  | SseContentTypeError
  | SseConnectionError
  | SseParser.SseParserError

/**
 * Where a client is in its life cycle.
 *
 * - `Connecting`: a request is being made. `attempt` counts the attempts in a
 *   row that have not delivered an event yet (1 for the first).
 * - `Open`: a 200 `text/event-stream` response arrived from `url` (the final
 *   URL after redirects).
 * - `Reconnecting`: the connection ended (`error` says why); the next attempt
 *   (`attempt`) starts after `delayMillis`.
 * - `Closed`: the stream is over: `no-content` (the server answered 204),
 *   `failed` (with the `error` the stream failed with) or `interrupted`
 *   (the consumer stopped).
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionState =
  | { readonly _tag: "Connecting"; readonly attempt: number; readonly url: string }
  | { readonly _tag: "Open"; readonly attempt: number; readonly url: string }
  | {
    readonly _tag: "Reconnecting"
    readonly attempt: number
    readonly delayMillis: number
    readonly error: SseConnectionError | SseStatusError
  }
  | { readonly _tag: "Closed"; readonly reason: "no-content" | "interrupted" }
  | { readonly _tag: "Closed"; readonly reason: "failed"; readonly error: SseClientError }

/**
 * Options for {@link connect}. The parser options (`strict`, `maxLineSize`,
 * `maxEventSize`, `lastEventId`) apply to every connection; `lastEventId`
 * seeds the `Last-Event-ID` of the first request, to resume a stream across
 * restarts of your process.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends SseParser.Options {
  /** Extra request headers (e.g. `authorization`); they override the defaults. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /**
   * Initial reconnection time, until the server sends `retry:`. Default 3 s.
   */
  readonly retry?: Duration.Input | undefined
  /**
   * Cap of the exponential backoff. Default 30 s. A server `retry:` above it
   * is still honoured.
   */
  readonly maxDelay?: Duration.Input | undefined
  /**
   * Give up after this many attempts in a row without an event; the stream
   * then fails with the last attempt's error. Default `Infinity`.
   */
  readonly maxAttempts?: number | undefined
  /**
   * Also reconnect (with backoff, and no sooner than `Retry-After`) after
   * these statuses instead of failing: `true` means 5xx and 429, or pass a
   * predicate. Default `false`: any status but 200/204 fails the stream, as
   * the spec says.
   */
  readonly retryStatus?: boolean | ((status: number) => boolean) | undefined
  /**
   * Close and replace a connection that receives no bytes for this long,
   * waiting for response headers included. Set it to a few heartbeat
   * intervals of your server. Default: no idle timeout.
   */
  readonly idleTimeout?: Duration.Input | undefined
  /** Redirects followed per attempt. Default 10. */
  readonly maxRedirects?: number | undefined
  /**
   * Events buffered ahead of a slow consumer; when full, the client stops
   * reading the socket (TCP back-pressure). Default 64.
   */
  readonly bufferSize?: number | undefined
  /** Called with every state change, in order, before the change takes effect. */
  readonly onStateChange?: ((state: ConnectionState) => Effect.Effect<void>) | undefined
}

/**
 * Opens an SSE stream and keeps it open: the returned `Stream` emits every
 * event of every connection, reconnects whenever a connection ends or fails
 * in a way the spec (or your options) says to retry, ends when the server
 * answers 204, and fails with an {@link SseClientError} otherwise.
 *
 * Backoff: let R be the reconnection time (`retry` option, then the server's
 * `retry:`) and k the number of attempts in a row that delivered no event.
 * After a connection that delivered events the client waits exactly R (as a
 * browser does). Otherwise it waits R plus a uniform random part of
 * `min(maxDelay, max(R, 1 s) * 2^k) - R` (full jitter above R), and for a
 * retried 5xx/429 at least `Retry-After`.
 *
 * Throws a `RangeError` at once for options that cannot work (a zero idle
 * timeout, `maxAttempts` below 1, a non-positive size limit...).
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { SseClient } from "@sluice/http"
 *
 * const prices = SseClient.connect("https://example.com/prices", {
 *   headers: { authorization: "Bearer token" },
 *   idleTimeout: "45 seconds",
 *   onStateChange: (state) => Effect.log(state._tag)
 * })
 *
 * prices.pipe(
 *   Stream.take(10),
 *   Stream.runForEach((e) => Effect.log(e.id, e.data)),
 *   Effect.provide(NodeHttpClient.layerNodeHttp),
 *   Effect.runPromise
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect: (
  input: string | URL | HttpClientRequest.HttpClientRequest,
  options?: ConnectOptions
) => Stream.Stream<SseEvent.Event, SseClientError, HttpClient.HttpClient> = internal.connect

/**
 * {@link connect}, plus a `SubscriptionRef` that holds the current
 * {@link ConnectionState} (its `changes` stream feeds a UI). The state starts
 * as `Connecting` attempt 1 and moves only while `events` runs.
 *
 * @example
 * ```ts
 * import { Effect, Stream, SubscriptionRef } from "effect"
 * import { SseClient } from "@sluice/http"
 *
 * const program = Effect.gen(function*() {
 *   const { events, state } = yield* SseClient.connectWithState("http://127.0.0.1:8080/events")
 *   yield* SubscriptionRef.changes(state).pipe(Stream.runForEach(Effect.log), Effect.forkScoped)
 *   yield* events.pipe(Stream.take(5), Stream.runDrain)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectWithState: (
  input: string | URL | HttpClientRequest.HttpClientRequest,
  options?: ConnectOptions
) => Effect.Effect<{
  readonly events: Stream.Stream<SseEvent.Event, SseClientError, HttpClient.HttpClient>
  readonly state: SubscriptionRef.SubscriptionRef<ConnectionState>
}> = internal.connectWithState
