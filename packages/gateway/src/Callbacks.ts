/**
 * Calls to the application: `connect` when a client opens a keyed stream
 * (the app accepts, renames the key, sends first events, or refuses), and
 * `disconnect` when the stream ends.
 *
 * The protocol (`POST <callback URL>`, JSON):
 *
 * ```text
 * connect    → { "action": "connect", "token", "key", "correlation_id",
 *                "request": { "method", "path", "query", "headers" } }
 *            ← 2xx, body empty or { "key"?: string, "events"?: [{ "event"?, "data", "id"? }] }
 *            ← 401 / 403 / 404, body optionally { "reason"?, "message"? }: refused
 * disconnect → { "action": "disconnect", "token", "key", "reason", "correlation_id" }
 * ```
 *
 * Every call carries `Authorization: Bearer <GATEWAY_SECRET>` (when set) and
 * `X-Correlation-ID`; the forwarded client headers never include a value
 * holding the secret.
 *
 * What it guarantees:
 * - **Bounded**: at most `concurrency` calls at once. A connect that gets no
 *   slot, or no answer, within `timeout` is {@link UnavailableError} (the client
 *   gets 503 with `Retry-After`), never a hung connection.
 * - **No silent loss**: disconnect calls wait in a bounded queue; one that
 *   does not fit, fails or times out is logged and counted
 *   (`sluice_gateway_callbacks_total{action,result}`). On shutdown the
 *   queue is drained for at most `drainTimeout`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/callbacks.ts"

/**
 * The request of a client that opens a keyed stream, as sent to the app.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientRequest {
  readonly method: string
  readonly path: string
  /** Query parameters; a repeated one is an array. */
  readonly query: Readonly<Record<string, string | ReadonlyArray<string>>>
  /** Lower-case names, filtered to the allowlist. */
  readonly headers: Readonly<Record<string, string>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectCall {
  readonly token: string
  readonly key: string
  readonly correlationId: string
  readonly request: ClientRequest
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DisconnectCall {
  readonly token: string
  readonly key: string
  readonly reason: string
  readonly correlationId: string
}

/**
 * An event the app asked to send first.
 *
 * @since 0.1.0
 * @category models
 */
export interface FirstEvent {
  readonly event?: string | undefined
  readonly data: string
  readonly id?: string | undefined
}

/**
 * The app's answer to a connect.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectAnswer =
  | { readonly _tag: "Accepted"; readonly key: string; readonly events: ReadonlyArray<FirstEvent> }
  | {
    readonly _tag: "Refused"
    readonly status: 401 | 403 | 404
    readonly reason: string | undefined
    readonly message: string | undefined
  }

/**
 * The app could not answer: it is down, slow, busy, or answered something
 * the protocol does not allow (was `Unavailable`).
 *
 * @since 0.2.0
 * @category errors
 */
export const UnavailableError: typeof internal.UnavailableError = internal.UnavailableError

/**
 * @since 0.2.0
 * @category errors
 */
export type UnavailableError = internal.UnavailableError

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly connect: (call: ConnectCall) => Effect.Effect<ConnectAnswer, UnavailableError>
  /** Queues the call (never waits); a full queue drops it, logged and counted. */
  readonly disconnectUnsafe: (call: DisconnectCall) => void
  /** Whether connects are called back at all (a callback URL is set). */
  readonly enabled: boolean
}

/**
 * The callback client.
 *
 * @since 0.1.0
 * @category services
 */
export class Callbacks extends Context.Service<Callbacks, Service>()("@sluice/gateway/Callbacks") {}

/**
 * Callback settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Without a URL, every connect is accepted with the path's key and no call is made. */
  readonly url: string | undefined
  readonly secret?: string | undefined
  /** Per call, including the wait for a slot. Default 5000. */
  readonly timeoutMillis?: number | undefined
  /** Calls in flight at once. Default 64. */
  readonly concurrency?: number | undefined
  /** Disconnect calls waiting at once. Default 10 000. */
  readonly queueCapacity?: number | undefined
  /** Longest wait for queued disconnect calls when the layer is released. Default: `timeoutMillis`. */
  readonly drainTimeoutMillis?: number | undefined
}

/**
 * Makes the callback client in the current scope (closing it drains the
 * disconnect queue, bounded).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Callbacks } from "@sluice/gateway"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const callbacks = yield* Callbacks.make({ url: "http://127.0.0.1:5000/sse/callback", timeoutMillis: 2000 })
 *   const answer = yield* callbacks.connect({
 *     token: "t1", key: "task-1", correlationId: "c1",
 *     request: { method: "GET", path: "/sse/task-1", query: {}, headers: {} }
 *   })
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Service, never, Scope.Scope> = internal.make

/**
 * The callback client as a layer.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Callbacks } from "@sluice/gateway"
 *
 * const Live = Callbacks.layer({ url: "http://127.0.0.1:5000/callback", secret: "s3cret", timeoutMillis: 2_000 })
 * const program = Effect.map(Callbacks.Callbacks, (callbacks) => callbacks.enabled).pipe(Effect.provide(Live))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Callbacks> => Layer.effect(Callbacks, make(options))
