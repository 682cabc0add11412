/**
 * SSE responses for `effect/http` routes on Node, running on sluice's
 * connection actor.
 *
 * Every stream made here gets: a bounded mailbox with backpressure, coalesced
 * writes, heartbeats, a write timeout for half-open clients, clean interruption
 * when the client leaves, connection limits, lifecycle events, and a fast
 * shutdown (see `SseServer`).
 *
 * What a client sees, in order:
 * 1. headers: `content-type: text/event-stream; charset=utf-8`,
 *    `cache-control: no-cache, no-transform`, `x-accel-buffering: no`;
 * 2. a `retry:` hint (base ± jitter, so that thousands of clients do not all
 *    reconnect in the same instant);
 * 3. `connection_open` with `{ "connection_id" }`;
 * 4. the producer's events (each written as soon as it is produced);
 * 5. when the server ends the stream, `connection_close` with `{ "reason" }`:
 *    `completed`, `failed` (after an `error` event with a safe message),
 *    `shutdown` (with a fresh jittered `retry:`), or the reason passed to
 *    `close`.
 *
 * Before any of that, a request can be refused with a problem-details body:
 * `400` (invalid `Last-Event-ID`), `401`/`403` (the `authorize` hook), `429`/
 * `503` with `Retry-After` (connection limits, shutdown).
 *
 * Each stream runs in a tracing span `sluice.sse.connection` that ends with
 * the stream, with the connection id (`sluice.connection_id`) and the
 * outcome (`sluice.outcome`: the outcome's `_tag`; `sluice.delivered`,
 * `sluice.discarded`) set then.
 *
 * The request and the stream: the route runs in its request's fiber like any
 * other (router, middleware such as CORS or authentication, `authorize`, the
 * server's limits). On Node, the stream is then written straight to the
 * socket and outlives that fiber: the platform writes the head of an empty
 * `200` (with what middleware added) and the request is over; the stream
 * keeps only its connection, body, span and slot. A response a middleware
 * puts in place of the stream is sent as it is, and the stream ends. (HTTP/2
 * and gzip streams are piped by the platform and keep their request.)
 *
 * The last event id is read from the `Last-Event-ID` header, or from a
 * `lastEventId` query parameter because a browser's first `EventSource`
 * request cannot set headers.
 *
 * @example
 * ```ts
 * import { Effect, Schedule, Stream } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { SseEvent } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 *
 * const Ticks = HttpRouter.add("GET", "/ticks", SseResponse.stream(({ lastEventId }) =>
 *   Stream.fromSchedule(Schedule.spaced("1 second")).pipe(
 *     Stream.map((n) => SseEvent.make({ id: String(Number(lastEventId ?? 0) + n + 1), data: String(n) }))
 *   )
 * ))
 * ```
 *
 * @since 0.1.0
 */
import type { Connection, Hub, Registry, SseEvent, Topics } from "@sluice/core"
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import type { HttpServerResponse } from "effect/http/HttpServerResponse"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/response.ts"
import type { Authorize } from "./SseAuth.ts"
import type { SseServer } from "./SseServer.ts"

/**
 * What a producer knows about the stream it feeds.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamInfo<P> {
  readonly connectionId: string
  /** From `Last-Event-ID` or `?lastEventId=`; `undefined` on a first connection. */
  readonly lastEventId: string | undefined
  /** What the `authorize` hook returned (`undefined` without one). */
  readonly principal: P
  readonly request: HttpServerRequest
  /**
   * The request's correlation id when the route has the `correlationId`
   * option (from `X-Correlation-ID` / `X-Request-ID`, or generated);
   * `undefined` otherwise.
   */
  readonly correlationId: string | undefined
}

/**
 * Names and payloads of the lifecycle events. Each can be turned off with
 * `false`.
 *
 * Gotchas: an event name with CR, LF or NUL is refused when the route is
 * defined (the route helper throws an `InvalidEventError` naming the option).
 * A `data` function that throws or returns what JSON cannot carry only costs
 * that event: it is skipped and a warning is logged.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lifecycle {
  /**
   * First event. Default: `connection_open` with `{ "connection_id": id }`
   * (plus `"correlation_id"` with the `correlationId` option).
   */
  readonly open?:
    | false
    | {
      readonly event?: string | undefined
      readonly data?:
        | ((info: { readonly connectionId: string; readonly correlationId: string | undefined }) => unknown)
        | undefined
    }
    | undefined
  /**
   * Last event before the server ends a stream. Default: `connection_close`
   * with `{ "reason": reason, "connection_id": id }` (plus
   * `"correlation_id"` with the `correlationId` option).
   */
  readonly close?:
    | false
    | {
      readonly event?: string | undefined
      readonly data?:
        | ((
          info: { readonly connectionId: string; readonly reason: string; readonly correlationId: string | undefined }
        ) => unknown)
        | undefined
    }
    | undefined
  /**
   * The `retry:` hint sent after `open` and with a shutdown close, in
   * milliseconds: `base` ± `jitter` (a fraction). Default 3 s ± 20%.
   */
  readonly retry?:
    | false
    | { readonly base?: Duration.Input | undefined; readonly jitter?: number | undefined }
    | undefined
  /**
   * The event written when the producer fails, before `connection_close`.
   * Default: `error` with `{ "message": "The event stream failed" }`. The
   * cause never reaches the client.
   */
  readonly error?: ((cause: Cause.Cause<unknown>) => ReadonlyArray<SseEvent.Frame>) | undefined
}

/**
 * Options of an SSE route. Values that cannot work (a capacity below 1 or
 * `NaN`, a heartbeat that is not a duration, a retry jitter outside 0..1,
 * an invalid lifecycle event name) are refused when the route is defined:
 * the route helper throws, naming the option.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<P = undefined, RA = never> {
  /** Mailbox capacity in frames. Default 64. */
  readonly capacity?: number | undefined
  /** Idle time before a heartbeat comment. Default 15 seconds; `false` for none. */
  readonly heartbeat?: Duration.Input | false | undefined
  readonly heartbeatText?: string | undefined
  /** Longest a write may take before the client counts as gone. Default 30 seconds. */
  readonly writeTimeout?: Duration.Input | false | undefined
  readonly lifecycle?: Lifecycle | undefined
  /**
   * gzip the stream when the client accepts it, with a flush after every
   * write so no event waits for more. Off by default: most SSE payloads are
   * small and compression costs CPU per connection.
   */
  readonly compression?: boolean | undefined
  /** Extra response headers. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** Runs before anything else; refusals become 401/403 and no stream opens. */
  readonly authorize?: Authorize<P, RA> | undefined
  /** Bytes buffered between the connection and the socket. Default 16 KiB. */
  readonly highWaterMark?: number | undefined
  /** Called once with the stream's outcome (for logs and custom metrics). Must not throw. */
  readonly onEnd?: ((outcome: Connection.Outcome) => void) | undefined
  /**
   * Gives every request a correlation id (see {@link CorrelationIdOptions}):
   * it is in {@link StreamInfo}, in the default lifecycle payloads
   * (`correlation_id`), and echoed as a response header on every answer of
   * the route, refusals included. Default: off.
   */
  readonly correlationId?: boolean | CorrelationIdOptions | undefined
  /**
   * Sends heartbeats as events instead of comments (`EventSource` never
   * shows comments, so browser code that must see liveness needs events):
   * every `heartbeat` interval (default 15 seconds), whatever else was
   * written, `heartbeat` with `{ "timestamp": <ISO 8601> }` by default. A
   * heartbeat that finds the mailbox full is skipped (the client is busy
   * reading anyway). Default: off (idle comments).
   */
  readonly heartbeatEvent?: boolean | HeartbeatEventOptions | undefined
}

/**
 * Where a request's correlation id comes from, and where it goes.
 *
 * The first of `headers` that holds an acceptable value is used: at most
 * `maxLength` characters of `A-Z a-z 0-9 . _ : -` (an id copied into logs
 * and answers must not carry anything else). A missing or unacceptable one
 * is replaced by a generated id (a random UUID).
 *
 * @since 0.1.0
 * @category models
 */
export interface CorrelationIdOptions {
  /** Request headers to read, in order. Default `["x-correlation-id", "x-request-id"]`. */
  readonly headers?: ReadonlyArray<string> | undefined
  /** Response header that echoes the id; `false` for none. Default `x-correlation-id`. */
  readonly responseHeader?: string | false | undefined
  /** Longest accepted id. Default 128. */
  readonly maxLength?: number | undefined
}

/**
 * The heartbeat event of {@link Options.heartbeatEvent}.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatEventOptions {
  /** Event name. Default `heartbeat`. */
  readonly event?: string | undefined
  /** Data, serialized as JSON. Default `{ "timestamp": <ISO 8601> }`. */
  readonly data?: ((info: { readonly timestamp: Date }) => unknown) | undefined
}

/**
 * Responds with an SSE stream fed by `producer`, which is given the
 * {@link StreamInfo} (connection id, last event id, principal) and returns a
 * `Stream` of frames or a function of its `Connection.Sender`.
 *
 * @example
 * ```ts
 * import { Effect, Schedule, Stream } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { SseEvent } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 *
 * // A clock; resumes after the client's Last-Event-ID.
 * const Clock = HttpRouter.add("GET", "/clock", SseResponse.stream(({ lastEventId }) =>
 *   Stream.iterate(Number(lastEventId ?? 0) + 1, (n) => n + 1).pipe(
 *     Stream.schedule(Schedule.spaced("1 second")),
 *     Stream.map((n) => SseEvent.make({ id: String(n), event: "tick", data: new Date().toISOString() }))
 *   ), { heartbeat: "20 seconds", capacity: 16 }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream: <P = undefined, E = never, R = never, RA = never>(
  producer: (info: StreamInfo<P>) => Connection.Producer<E, R>,
  options?: Options<P, RA>
) => Effect.Effect<HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | R | RA> = internal.stream

/**
 * The lower-level form of {@link stream}: `attach` receives the request's
 * {@link StreamInfo} and the connection options sluice prepared (sink,
 * preamble, terminal frames, limits), and must start a connection with them
 * in the current scope, for example by subscribing to a hub. This is how
 * hub, topic and keyed-registry routes are built. It may answer with a
 * response instead (for example a 404 for an unknown key).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { Hub } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 *
 * // A hub route written by hand (what SseResponse.hub does, plus a log line).
 * const route = (hub: Hub.Hub) =>
 *   HttpRouter.add("GET", "/feed", SseResponse.attach((info, prepared) =>
 *     Effect.gen(function*() {
 *       yield* Effect.logDebug(`subscriber ${info.connectionId} from ${info.lastEventId ?? "the start"}`)
 *       const sub = yield* Hub.subscribe(hub, {
 *         ...prepared.connection,
 *         dropNotice: undefined, // the connection's own form; a hub takes `true` or a function of `missed`
 *         preamble: prepared.preamble,
 *         lastEventId: info.lastEventId
 *       })
 *       return sub.connection
 *     }).pipe(Effect.orDie)))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach: <P = undefined, E = never, R = never, RA = never>(
  start: (
    info: StreamInfo<P>,
    prepared: Prepared
  ) => Effect.Effect<Connection.Connection | HttpServerResponse, E, R | Scope.Scope>,
  options?: Options<P, RA>
) => Effect.Effect<HttpServerResponse, E, HttpServerRequest | SseServer | Scope.Scope | R | RA> = internal.attach

/**
 * What {@link attach} hands to the code that starts the connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Prepared {
  /**
   * Connection options to pass through (sink, capacity, heartbeat, write
   * timeout, terminal frames, id). The route observes the connection's end
   * itself (`Connection.addObserver`) once `attach`'s start returns it.
   */
  readonly connection: Connection.Options<unknown, never>
  /** Frames to write before anything else (`retry:` hint, `connection_open`). */
  readonly preamble: ReadonlyArray<SseEvent.Frame>
  /** The frames that close a stream with `reason`, for ends decided by a hub or registry. */
  readonly closeFrames: (reason: string) => ReadonlyArray<SseEvent.Frame>
}

/**
 * Options of a hub or topic route: those of any stream, plus the
 * subscriber's {@link Hub.Strategy} (what to do when its mailbox is full).
 *
 * @since 0.1.0
 * @category models
 */
export interface HubOptions<P = undefined, RA = never> extends Options<P, RA> {
  /** What to do when a subscriber's mailbox is full. Default `disconnect` (see `Hub.Strategy`). */
  readonly strategy?: Hub.Strategy | undefined
  /** Under `suspend`: how long a publisher may wait for one subscriber. */
  readonly suspendTimeout?: Duration.Input | undefined
  /** Under `sliding` / `dropping`: tell the client how many events it missed (see `Hub.SubscribeOptions`). */
  readonly dropNotice?: Hub.SubscribeOptions["dropNotice"]
}

/**
 * Responds with a subscription to `hub`: the client gets the lifecycle
 * events, then (when it sent a `Last-Event-ID`) every retained event after
 * that id or a `replay_gap` signal, then live events, through its own
 * bounded mailbox and slow-client strategy. When the hub is over a remote log
 * that cannot be read for that replay (Redis down), the request is answered
 * `503` with problem details and `Retry-After` (the log's error, which names
 * internal addresses, stays on the server).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { Hub } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 *
 * const Prices = Layer.unwrap(Effect.map(Hub.make({ history: { maxEvents: 1000 } }), (hub) =>
 *   HttpRouter.add("GET", "/prices", SseResponse.hub(hub, { strategy: "sliding" }))
 * ))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const hub: <P = undefined, RA = never>(
  hub: Hub.Hub,
  options?: HubOptions<P, RA>
) => Effect.Effect<HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA> = internal.hub

/**
 * Like {@link hub}, for a topic of `topics` chosen from the request (for
 * example from a path parameter). Beyond the topic limit the request is
 * answered `503` with problem details, as is a replay whose record (a remote
 * log) cannot be read.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { Topics } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 *
 * const Rooms = Layer.unwrap(Effect.map(Topics.make({ maxTopics: 1_000 }), (rooms) =>
 *   HttpRouter.add("GET", "/rooms/:room", SseResponse.topic(rooms, () =>
 *     Effect.map(HttpRouter.params, (p) => p["room"] ?? "lobby"), { strategy: "sliding", dropNotice: true }))))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const topic: <P = undefined, RA = never, RT = never>(
  topics: Topics.Topics,
  name: (info: StreamInfo<P>) => Effect.Effect<string, never, RT>,
  options?: HubOptions<P, RA>
) => Effect.Effect<HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA | RT> = internal.topic

/**
 * Options of a keyed route.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyedOptions<P = undefined, RA = never> extends Options<P, RA> {
  /**
   * Answer for a key the registry's `exists` lookup rejects. Default: status
   * 200 with `connection_open`, an `error` event (`{"message": …}`) and
   * `connection_close` with reason `not_found`, which is what existing
   * EventSource clients expect; `status: 404` answers a problem-details 404
   * instead (no stream).
   */
  readonly notFound?:
    | {
      readonly status?: 200 | 404 | undefined
      readonly reason?: string | undefined
      readonly message?: string | undefined
    }
    | undefined
}

/**
 * Responds with the stream of one key of a keyed `Registry` (for example
 * `/tasks/:id/stream`): the client gets the lifecycle events, then the key's
 * waiting events, then live ones; a newer connection for the same key
 * replaces this one (`connection_close` with reason `replaced`); a terminal
 * send ends it with its reason. Beyond the registry's `maxKeys`, or while a
 * registry kept elsewhere cannot be reached (`RegistryUnavailableError`), the
 * request is answered `503` with problem details and `Retry-After`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpRouter } from "effect/http"
 * import type { Registry } from "@sluice/core"
 * import { SseResponse } from "@sluice/http"
 *
 * const route = (tasks: Registry.Registry) =>
 *   HttpRouter.add("GET", "/tasks/:id/stream", SseResponse.keyed(tasks, () =>
 *     Effect.map(HttpRouter.params, (p) => p["id"] ?? ""), { notFound: { reason: "task_not_found" } }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const keyed: <P = undefined, RA = never, RK = never>(
  registry: Registry.Registry,
  key: (info: StreamInfo<P>) => Effect.Effect<string, never, RK>,
  options?: KeyedOptions<P, RA>
) => Effect.Effect<HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA | RK> = internal.keyed
