/**
 * The SSE routes behind `SseResponse`: admission (limits, authorization,
 * `Last-Event-ID`), the preamble (`retry:`, `connection_open`), the terminal
 * and close frames, the tracing span, and the Node body the connection writes
 * into; `attach` is the common path of `stream`, `hub`, `topic` and `keyed`.
 *
 * Route options are checked when the route is defined, not on every request.
 *
 * @internal
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Connection, Hub, OptionCheck, Registry, SseEncoder, SseEvent, Topics } from "@sluice/core"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { ClientAbort } from "effect/http/HttpServerError"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type * as Http from "node:http"
import type * as SseResponse from "../SseResponse.ts"
import { SseServer } from "../SseServer.ts"
import * as Correlation from "./correlation.ts"
import * as HeartbeatEvents from "./heartbeatEvents.ts"
import * as NodeBody from "./nodeBody.ts"
import { problem } from "./problem.ts"

const { atLeast, check, millis } = OptionCheck

const maxLastEventIdLength = 1024

const streamContentType = "text/event-stream; charset=utf-8"
const streamHeaders = { "cache-control": "no-cache, no-transform", "x-accel-buffering": "no" } as const

type LastEventId = string | undefined | { readonly invalid: string }

// Header first; the query parameter is for browsers' first EventSource request.
const readLastEventId = (request: HttpServerRequest): LastEventId => {
  let value: string | undefined = request.headers["last-event-id"]
  if (value === undefined) {
    const q = request.url.indexOf("?")
    if (q !== -1) value = new URLSearchParams(request.url.slice(q + 1)).get("lastEventId") ?? undefined
  }
  if (value === undefined || value === "") return undefined
  if (value.length > maxLastEventIdLength) {
    return { invalid: `Last-Event-ID is longer than ${maxLastEventIdLength} characters` }
  }
  // An id a server could have sent never contains CR, LF or NUL.
  if (/[\0\r\n]/.test(value)) return { invalid: "Last-Event-ID contains CR, LF or NUL" }
  return value
}

const acceptsGzip = (header: string | undefined): boolean => {
  if (header === undefined) return false
  for (const part of header.split(",")) {
    const [coding, ...params] = part.trim().toLowerCase().split(";")
    if (coding !== "gzip" && coding !== "x-gzip") continue
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="))
    return q === undefined || Number(q.slice(2)) > 0
  }
  return false
}

const defaultError = (): ReadonlyArray<SseEvent.Frame> => [
  SseEvent.make({ event: "error", data: JSON.stringify({ message: "The event stream failed" }) })
]

interface ResolvedLifecycle {
  readonly open: (connectionId: string, correlationId: string | undefined) => ReadonlyArray<SseEvent.Frame>
  readonly close: (
    connectionId: string,
    reason: string,
    correlationId: string | undefined
  ) => ReadonlyArray<SseEvent.Frame>
  readonly retry: Effect.Effect<ReadonlyArray<SseEvent.Frame>>
  readonly error: (cause: Cause.Cause<unknown>) => ReadonlyArray<SseEvent.Frame>
  /** The open event's data comes from user code (so its frames are checked per connection). */
  readonly userOpenData: boolean
}

// An event name from the route's options is checked once, when the route is
// defined: an invalid one is a programming error that every request would hit.
const checkedEventName = (option: string, name: string): string => {
  const checked = SseEncoder.encodeText(SseEvent.make({ event: name, data: "" }))
  if (Result.isFailure(checked)) {
    throw new SseEvent.InvalidEventError({ field: "event", reason: `${option}: ${checked.failure.reason}` })
  }
  return name
}

// A lifecycle event whose data comes from user code: if that code throws or
// returns something JSON cannot carry, the event's data is not a string and
// the encoder refuses the frame, which is then skipped with a logged warning
// (see `validFrames` and the connection's terminal frames) instead of failing
// the stream.
const jsonEvent = (event: string, data: () => unknown): SseEvent.Event => {
  let json: unknown
  try {
    json = JSON.stringify(data())
  } catch {
    json = undefined
  }
  return SseEvent.make({ event, data: json as string })
}

// Numbers and durations that cannot work are refused when the route is
// defined, not on every request (the connection would die) or never (a
// heartbeat of NaN).
const validateOptions = <P, RA>(options: SseResponse.Options<P, RA>): void => {
  const where = "SseResponse"
  check(where, "capacity (a finite number of frames, at least 1)", atLeast(options.capacity, 1), options.capacity)
  check(
    where,
    "highWaterMark (a finite number of bytes, at least 1)",
    atLeast(options.highWaterMark, 1),
    options.highWaterMark
  )
  const duration = (name: string, input: Duration.Input | false | undefined) =>
    check(where, `${name} (a duration or false)`, input === false || !Number.isNaN(millis(input, 0)), input)
  duration("heartbeat", options.heartbeat)
  duration("writeTimeout", options.writeTimeout)
  const retry = options.lifecycle?.retry
  if (retry !== undefined && retry !== false) {
    check(where, "lifecycle.retry.base (a finite duration)", Number.isFinite(millis(retry.base, 0)), retry.base)
    check(
      where,
      "lifecycle.retry.jitter (a number from 0 to 1)",
      retry.jitter === undefined || (typeof retry.jitter === "number" && retry.jitter >= 0 && retry.jitter <= 1),
      retry.jitter
    )
  }
}

const withCorrelation = (data: Record<string, string>, correlationId: string | undefined) =>
  correlationId === undefined ? data : { ...data, correlation_id: correlationId }

const resolveLifecycle = (lifecycle: SseResponse.Lifecycle = {}): ResolvedLifecycle => {
  const open = lifecycle.open ?? {}
  const close = lifecycle.close ?? {}
  const retry = lifecycle.retry ?? {}
  const baseMs = retry === false ? 0 : Duration.toMillis(Duration.fromInputUnsafe(retry.base ?? "3 seconds"))
  const jitter = retry === false ? 0 : Math.min(1, Math.max(0, retry.jitter ?? 0.2))
  const openEvent = open === false ? "" : checkedEventName("lifecycle.open.event", open.event ?? "connection_open")
  const closeEvent = close === false ? "" : checkedEventName("lifecycle.close.event", close.event ?? "connection_close")
  return {
    open: open === false ? () => [] : (connectionId, correlationId) => [
      jsonEvent(
        openEvent,
        () =>
          open.data
            ? open.data({ connectionId, correlationId })
            : withCorrelation({ connection_id: connectionId }, correlationId)
      )
    ],
    close: close === false ? () => [] : (connectionId, reason, correlationId) => [
      jsonEvent(
        closeEvent,
        () =>
          close.data
            ? close.data({ connectionId, reason, correlationId })
            : withCorrelation({ reason, connection_id: connectionId }, correlationId)
      )
    ],
    // base ± jitter, so that clients told to come back do not all come back at once
    retry: retry === false
      ? Effect.succeed([])
      : Effect.map(Random.next, (u) => [SseEvent.retry(Math.max(0, Math.round(baseMs * (1 + jitter * (2 * u - 1)))))]),
    error: lifecycle.error ?? defaultError,
    userOpenData: open !== false && open.data !== undefined
  }
}

// Frames of the preamble that the encoder accepts; the others are skipped
// with a warning naming them (user-supplied lifecycle data).
const validFrames = (
  frames: ReadonlyArray<SseEvent.Frame>,
  connectionId: string
): Effect.Effect<ReadonlyArray<SseEvent.Frame>> => {
  const invalid: Array<string> = []
  const valid = frames.filter((frame) => {
    const checked = SseEncoder.encodeText(frame)
    if (Result.isFailure(checked)) invalid.push(checked.failure.message)
    return Result.isSuccess(checked)
  })
  return invalid.length === 0
    ? Effect.succeed(frames)
    : Effect.as(Effect.logWarning(`sluice connection ${connectionId}: lifecycle frames skipped`, invalid), valid)
}

// The Node response behind a request served by @effect/platform-node, if it is one.
const nodeResponse = (request: HttpServerRequest): Http.ServerResponse | undefined => {
  try {
    const res = NodeHttpServerRequest.toServerResponse(request) as Http.ServerResponse | undefined
    return res !== undefined && typeof res.write === "function" && "writableNeedDrain" in res ? res : undefined
  } catch {
    return undefined
  }
}

const isClientAbort = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) && Context.getOrUndefined(Cause.annotations(exit.cause), ClientAbort) === true

const prepend = <E, R>(
  preamble: ReadonlyArray<SseEvent.Frame>,
  producer: Connection.Producer<E, R>
): Connection.Producer<E, R> => {
  if (preamble.length === 0) return producer
  if (Stream.isStream(producer)) return Stream.concat(Stream.fromIterable(preamble), producer)
  return (mailbox) => Effect.andThen(Effect.orDie(mailbox.sendAll(preamble)), producer(mailbox))
}

/** @internal */
export const attach = <P = undefined, E = never, R = never, RA = never>(
  start: (
    info: SseResponse.StreamInfo<P>,
    prepared: SseResponse.Prepared
  ) => Effect.Effect<Connection.Connection | HttpServerResponse.HttpServerResponse, E, R | Scope.Scope>,
  options: SseResponse.Options<P, RA> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, HttpServerRequest | SseServer | Scope.Scope | R | RA> => {
  // Once per route, not per request.
  validateOptions(options)
  const lifecycle = resolveLifecycle(options.lifecycle)
  // Parsed here, once per route: every connection then gets a Duration, not
  // a string to parse again.
  const parsed = (input: Duration.Input | false | undefined) =>
    input === undefined || input === false ? input : Duration.fromInputUnsafe(input)
  const heartbeat = parsed(options.heartbeat)
  const writeTimeout = parsed(options.writeTimeout)
  const correlation = Correlation.resolve(options.correlationId)
  const heartbeatEvents = HeartbeatEvents.resolve(options.heartbeatEvent, heartbeat)
  const graceMillis = writeTimeout === false
    ? Number.POSITIVE_INFINITY
    : Duration.toMillis(writeTimeout ?? Duration.seconds(30))
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest
    const server = yield* SseServer
    const correlationId = correlation?.read(request)
    // Every answer of the route carries the correlation id, refusals included.
    const answer = (response: HttpServerResponse.HttpServerResponse) =>
      correlation === undefined ? response : correlation.echo(response, correlationId!)

    const lastEventId = readLastEventId(request)
    if (typeof lastEventId === "object") return answer(problem(400, "Bad Request", lastEventId.invalid))

    let principal = undefined as P
    if (options.authorize !== undefined) {
      const decided = yield* Effect.result(options.authorize(request))
      if (Result.isFailure(decided)) {
        const refusal = decided.failure
        return answer(
          refusal._tag === "UnauthorizedError"
            ? problem(401, "Unauthorized", refusal.detail, { "www-authenticate": refusal.challenge ?? "Bearer" })
            : problem(403, "Forbidden", refusal.detail)
        )
      }
      principal = decided.success
    }

    // A HEAD request gets the stream's headers and no stream: nothing would
    // read it, and starting a producer for nobody is waste.
    if (request.method === "HEAD") {
      return answer(HttpServerResponse.empty({
        status: 200,
        headers: { "content-type": streamContentType, ...streamHeaders, ...options.headers }
      }))
    }

    const admitted = yield* Effect.result(server.admit(request))
    if (Result.isFailure(admitted)) {
      const refusal = admitted.failure
      return answer(problem(
        refusal.scope === "client" ? 429 : 503,
        refusal.scope === "client" ? "Too Many Requests" : "Service Unavailable",
        refusal.message,
        {
          "retry-after": String(refusal.retryAfterSeconds)
        }
      ))
    }

    const connectionId = randomUUID()
    const span = yield* Effect.makeSpanScoped("sluice.sse.connection", {
      attributes: { "sluice.connection_id": connectionId }
    })
    const gzip = options.compression === true && acceptsGzip(request.headers["accept-encoding"])
    const res = nodeResponse(request)
    const body = gzip
      ? NodeBody.gzip()
      : res !== undefined
      ? NodeBody.direct(res)
      : NodeBody.plain(options.highWaterMark ?? 16 * 1024)
    const closeFrames = (reason: string) => lifecycle.close(connectionId, reason, correlationId)
    const opening = lifecycle.open(connectionId, correlationId)
    const preamble = [
      ...(yield* lifecycle.retry),
      // Only user-supplied data can make these frames invalid.
      ...(lifecycle.userOpenData ? yield* validFrames(opening, connectionId) : opening)
    ]
    const prepared: SseResponse.Prepared = {
      connection: {
        sink: body.sink,
        capacity: options.capacity,
        // Heartbeat events replace the idle comments.
        heartbeat: heartbeatEvents === undefined ? heartbeat : false,
        heartbeatText: options.heartbeatText,
        writeTimeout,
        id: connectionId,
        terminal: {
          completed: () => closeFrames("completed"),
          failed: (cause) => [...lifecycle.error(cause), ...closeFrames("failed")]
        }
      },
      preamble,
      closeFrames
    }
    const info: SseResponse.StreamInfo<P> = { connectionId, lastEventId, principal, request, correlationId }
    // No captured call site: it would always be this line, and costs an Error
    // (and its retained stack frames) per connection.
    const started = yield* Effect.withParentSpan(start(info, prepared), span, { captureStackTrace: false })
    if (HttpServerResponse.isHttpServerResponse(started)) {
      body.discard()
      return answer(started)
    }
    const connection = started
    // At once when it ends (or now, if it already has).
    connection.addObserver((outcome) => {
      // A client that is gone, or was cut off, gets no graceful end.
      if (outcome._tag === "ClientGone" || outcome._tag === "Interrupted" || outcome.discarded > 0) {
        body.abort()
      } else {
        body.end(graceMillis)
      }
      span.attribute("sluice.outcome", outcome._tag)
      span.attribute("sluice.delivered", outcome.delivered)
      span.attribute("sluice.discarded", outcome.discarded)
      options.onEnd?.(outcome)
    })

    // The socket side went away (the pipe to the client broke).
    body.onGone((error) => connection.lostUnsafe(error))
    // Added after the connection, so it runs before the connection's own
    // finalizer: a client abort ends the stream as `ClientGone`, not `Interrupted`.
    yield* Effect.addFinalizer((exit) =>
      isClientAbort(exit)
        ? connection.lost(NodeBody.goneError(undefined, "the client closed the connection"))
        : Effect.void
    )
    yield* server.register({
      connection,
      closeForShutdown: Effect.flatMap(
        lifecycle.retry,
        (retry) => Effect.asVoid(connection.close("shutdown", [...retry, ...closeFrames("shutdown")]))
      )
    })

    if (heartbeatEvents !== undefined) yield* Effect.forkScoped(heartbeatEvents(connection))

    const responseOptions = {
      contentType: streamContentType,
      headers: {
        ...streamHeaders,
        ...(gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : {}),
        ...options.headers
      }
    }
    return answer(
      Stream.isStream(body.body)
        ? HttpServerResponse.stream(body.body, responseOptions)
        : HttpServerResponse.raw(body.body, responseOptions)
    )
  })
}

/** @internal */
export const stream = <P = undefined, E = never, R = never, RA = never>(
  producer: (info: SseResponse.StreamInfo<P>) => Connection.Producer<E, R>,
  options: SseResponse.Options<P, RA> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | R | RA> =>
  attach<P, never, R, RA>(
    (info, prepared) =>
      Connection.make({
        ...(prepared.connection as Connection.Options<E, R>),
        producer: prepend(prepared.preamble, producer(info))
      }),
    options
  )

const subscribeOptions = <P, RA>(
  info: SseResponse.StreamInfo<P>,
  prepared: SseResponse.Prepared,
  options: SseResponse.HubOptions<P, RA>
): Hub.SubscribeOptions => ({
  ...prepared.connection,
  preamble: prepared.preamble,
  lastEventId: info.lastEventId,
  strategy: options.strategy,
  suspendTimeout: options.suspendTimeout,
  dropNotice: options.dropNotice
})

// The hub's record (a remote log) could not be read for the client's replay:
// a 503 to try again shortly. The log's own message names internals (an
// address): it stays on the server.
const recordUnavailable = () =>
  problem(503, "Service Unavailable", "the stream's history cannot be read right now; try again shortly", {
    "retry-after": "2"
  })

/** @internal */
export const hub = <P = undefined, RA = never>(
  target: Hub.Hub,
  options: SseResponse.HubOptions<P, RA> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA> =>
  attach<P, never, never, RA>(
    (info, prepared) =>
      Hub.subscribe(target, subscribeOptions(info, prepared, options)).pipe(
        Effect.map((s): Connection.Connection | HttpServerResponse.HttpServerResponse => s.connection),
        Effect.catchTag("LogError", () => Effect.succeed(recordUnavailable())),
        // The preamble is made of sluice's own valid frames.
        Effect.orDie
      ),
    options
  )

/** @internal */
export const topic = <P = undefined, RA = never, RT = never>(
  topics: Topics.Topics,
  name: (info: SseResponse.StreamInfo<P>) => Effect.Effect<string, never, RT>,
  options: SseResponse.HubOptions<P, RA> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA | RT> =>
  attach<P, never, RT, RA>(
    (info, prepared) =>
      Effect.flatMap(
        name(info),
        (topicName) =>
          Topics.subscribe(topics, topicName, subscribeOptions(info, prepared, options)).pipe(
            Effect.map((s): Connection.Connection | HttpServerResponse.HttpServerResponse => s.connection),
            Effect.catchTag(
              "TopicLimitError",
              (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, { "retry-after": "5" }))
            ),
            Effect.catchTag("LogError", () => Effect.succeed(recordUnavailable())),
            Effect.orDie
          )
      ),
    options
  )

/** @internal */
export const keyed = <P = undefined, RA = never, RK = never>(
  registry: Registry.Registry,
  key: (info: SseResponse.StreamInfo<P>) => Effect.Effect<string, never, RK>,
  options: SseResponse.KeyedOptions<P, RA> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest | SseServer | Scope.Scope | RA | RK> =>
  attach<P, never, RK, RA>(
    (info, prepared) =>
      Effect.flatMap(key(info), (k) =>
        Registry.connect(registry, k, {
          ...prepared.connection,
          preamble: prepared.preamble,
          closeFrames: prepared.closeFrames
        }).pipe(
          Effect.map((c): Connection.Connection | HttpServerResponse.HttpServerResponse => c),
          Effect.catchTag("UnknownKeyError", (): Effect.Effect<
            Connection.Connection | HttpServerResponse.HttpServerResponse,
            never,
            Scope.Scope
          > => {
            const notFound = options.notFound ?? {}
            const message = notFound.message ?? "not found"
            if (notFound.status === 404) return Effect.succeed(problem(404, "Not Found", message))
            // What EventSource clients expect: a stream that says so and ends.
            return Connection.make({
              ...prepared.connection,
              producer: Stream.fromIterable([
                ...prepared.preamble,
                SseEvent.make({ event: "error", data: JSON.stringify({ message }) })
              ]),
              terminal: { completed: () => prepared.closeFrames(notFound.reason ?? "not_found") }
            })
          }),
          Effect.catchTag(
            ["TooManyKeysError", "RegistryUnavailableError"],
            (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, { "retry-after": "5" }))
          )
        )),
    options
  )
