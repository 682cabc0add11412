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
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { ClientAbort } from "effect/http/HttpServerError"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import { randomUUID } from "node:crypto"
import type * as Http from "node:http"
import type * as SseResponse from "../SseResponse.ts"
import { type Registration, SseServer } from "../SseServer.ts"
import * as Correlation from "./correlation.ts"
import * as HeartbeatEvents from "./heartbeatEvents.ts"
import * as NodeBody from "./nodeBody.ts"
import { problem } from "./problem.ts"
import { ConnectionLimitError, type Plain, plainOf } from "./server.ts"

const { atLeast, check, millis } = OptionCheck

const maxLastEventIdLength = 1024

// A v4 UUID as one flat string: `randomUUID()` builds it by concatenation, a
// tree of fifteen strings (about 480 bytes) that an open stream would keep
// for its whole life; copied through a buffer, it is one string of 36 bytes.
const flatUuid = (): string => Buffer.from(randomUUID(), "latin1").toString("latin1")

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
  readonly retry: (random: Random.Random) => ReadonlyArray<SseEvent.Frame>
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
    retry: retry === false ? () => [] : (random) => {
      const u = random.nextDoubleUnsafe()
      return [SseEvent.retry(Math.max(0, Math.round(baseMs * (1 + jitter * (2 * u - 1)))))]
    },
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

/** What a route resolves once: its options, lifecycle, end grace and the head of its streams. */
interface Route {
  readonly options: SseResponse.Options<any, any>
  readonly lifecycle: ResolvedLifecycle
  readonly graceMillis: number
  readonly correlation: Correlation.Correlation | undefined
  readonly heartbeatEvents: HeartbeatEvents.HeartbeatEvents | undefined
  /** The response of a stream written straight to the socket (see `NodeBody.direct`). */
  readonly head: HttpServerResponse.HttpServerResponse
}

/**
 * One open stream: its connection, body, span and scope, and how it ends.
 * It is the stream's registration with the server, and its methods are what
 * the connection and the body call: everything a stream keeps while it
 * lasts is here (no closure over the request that opened it).
 */
class OpenStream implements Registration {
  connection!: Connection.Connection
  private readonly route: Route
  private readonly connectionId: string
  private readonly correlationId: string | undefined
  private readonly body: NodeBody.NodeBody
  private readonly span: Tracer.Span
  private readonly scope: Scope.Closeable
  private readonly clock: Clock.Clock
  // With sluice's own server: its plain calls, and the slot to give back.
  private readonly server: Plain | undefined
  private release: (() => void) | undefined

  constructor(
    route: Route,
    connectionId: string,
    correlationId: string | undefined,
    body: NodeBody.NodeBody,
    span: Tracer.Span,
    scope: Scope.Closeable,
    clock: Clock.Clock,
    server: Plain | undefined,
    release: (() => void) | undefined
  ) {
    this.route = route
    this.connectionId = connectionId
    this.correlationId = correlationId
    this.body = body
    this.span = span
    this.scope = scope
    this.clock = clock
    this.server = server
    this.release = release
  }

  closeFrames(reason: string): ReadonlyArray<SseEvent.Frame> {
    return this.route.lifecycle.close(this.connectionId, reason, this.correlationId)
  }

  get closeForShutdown(): Effect.Effect<void> {
    return Effect.withFiber((fiber) =>
      Effect.asVoid(
        this.connection.close("shutdown", [
          ...this.route.lifecycle.retry(Context.get(fiber.context, Random.Random)),
          ...this.closeFrames("shutdown")
        ])
      )
    )
  }

  /** The connection's observer: at once when it ends (or now, if it already has). */
  readonly ended = (outcome: Connection.Outcome): void => {
    // A client that is gone, or was cut off, gets no graceful end.
    if (outcome._tag === "ClientGone" || outcome._tag === "Interrupted" || outcome.discarded > 0) {
      this.body.abort()
    } else {
      this.body.end(this.route.graceMillis)
    }
    const span = this.span
    span.attribute("sluice.connection_id", this.connectionId)
    span.attribute("sluice.outcome", outcome._tag)
    span.attribute("sluice.delivered", outcome.delivered)
    span.attribute("sluice.discarded", outcome.discarded)
    span.end(this.clock.currentTimeNanosUnsafe(), Exit.void)
    this.route.options.onEnd?.(outcome)
    this.close(Exit.void)
  }

  /** The request that opened it has ended, and the stream goes on (see `NodeBody.direct`). */
  detached(): boolean {
    return this.body.detached
  }

  /** The route answered otherwise (`start` returned a response): no stream. */
  discard(): void {
    this.body.discard()
    this.span.attribute("sluice.connection_id", this.connectionId)
    this.span.end(this.clock.currentTimeNanosUnsafe(), Exit.void)
  }

  /** Releases what the stream holds (its slot, registration, subscription): its scope. */
  close(exit: Exit.Exit<unknown, unknown>): void {
    this.server?.delist(this)
    const release = this.release
    this.release = undefined
    release?.()
    const closing = Scope.closeUnsafe(this.scope, exit)
    // Its finalizers need no service (and the request's context is not kept).
    if (closing !== undefined) Effect.runFork(closing)
  }
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
  const route: Route = {
    options,
    lifecycle,
    graceMillis: writeTimeout === false
      ? Number.POSITIVE_INFINITY
      : Duration.toMillis(writeTimeout ?? Duration.seconds(30)),
    correlation: Correlation.resolve(options.correlationId),
    heartbeatEvents: HeartbeatEvents.resolve(options.heartbeatEvent, heartbeat),
    head: HttpServerResponse.empty({
      status: 200,
      headers: { "content-type": streamContentType, ...streamHeaders, ...options.headers }
    })
  }
  const highWaterMark = options.highWaterMark ?? 16 * 1024
  const settings: Settings = { route, heartbeat, writeTimeout, highWaterMark }
  // A few effects around plain code: a stream is opened per request, and the
  // steps of a generator were a good part of what opening one cost.
  return Effect.withFiber((fiber) => {
    const request = Context.getUnsafe(fiber.context as Context.Context<HttpServerRequest>, HttpServerRequest)
    const answering = new Answering(route.correlation, request)
    const lastEventId = readLastEventId(request)
    if (typeof lastEventId === "object") {
      return Effect.succeed(answering.answer(problem(400, "Bad Request", lastEventId.invalid)))
    }
    if (options.authorize === undefined) {
      return openStream(settings, fiber, request, answering, lastEventId, undefined as P, start)
    }
    return Effect.flatMap(Effect.result(options.authorize(request)), (decided) => {
      if (Result.isSuccess(decided)) {
        return openStream(settings, fiber, request, answering, lastEventId, decided.success, start)
      }
      const refusal = decided.failure
      return Effect.succeed(answering.answer(
        refusal._tag === "UnauthorizedError"
          ? problem(401, "Unauthorized", refusal.detail, { "www-authenticate": refusal.challenge ?? "Bearer" })
          : problem(403, "Forbidden", refusal.detail)
      ))
    })
  })
}

/** A request's correlation id, and every answer of the route carrying it (refusals included). */
class Answering {
  readonly correlation: Correlation.Correlation | undefined
  readonly id: string | undefined
  constructor(correlation: Correlation.Correlation | undefined, request: HttpServerRequest) {
    this.correlation = correlation
    this.id = correlation?.read(request)
  }
  answer(response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse {
    return this.correlation === undefined ? response : this.correlation.echo(response, this.id!)
  }
}

/** What `attach` resolved for its route. */
interface Settings {
  readonly route: Route
  readonly heartbeat: Duration.Duration | false | undefined
  readonly writeTimeout: Duration.Duration | false | undefined
  readonly highWaterMark: number
}

const refusedResponse = (refusal: ConnectionLimitError) =>
  problem(
    refusal.scope === "client" ? 429 : 503,
    refusal.scope === "client" ? "Too Many Requests" : "Service Unavailable",
    refusal.message,
    { "retry-after": String(refusal.retryAfterSeconds) }
  )

// An admitted request's stream: its scope, span, body and connection.
const openStream = <P, E, R>(
  settings: Settings,
  fiber: Fiber.Fiber<unknown, unknown>,
  request: HttpServerRequest,
  answering: Answering,
  lastEventId: string | undefined,
  principal: P,
  start: (
    info: SseResponse.StreamInfo<P>,
    prepared: SseResponse.Prepared
  ) => Effect.Effect<Connection.Connection | HttpServerResponse.HttpServerResponse, E, R | Scope.Scope>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | Scope.Scope> => {
  const { route } = settings
  const { lifecycle, options } = route
  // A HEAD request gets the stream's headers and no stream: nothing would
  // read it, and starting a producer for nobody is waste.
  if (request.method === "HEAD") return Effect.succeed(answering.answer(route.head))
  const server = Context.getUnsafe(fiber.context as Context.Context<SseServer>, SseServer)
  const plain = plainOf(server)
  // The stream's own scope, not the request's: with a direct body the
  // request ends once the head is out, and the stream goes on. Until then
  // (a refusal, a client that leaves early, a middleware that answers
  // otherwise) the request's end ends it too.
  const scope = Scope.makeUnsafe()
  const held: { open: OpenStream | undefined; release: (() => void) | undefined } = {
    open: undefined,
    release: undefined
  }
  const untilDetached = Effect.addFinalizer((exit) => {
    const open = held.open
    if (open === undefined) {
      held.release?.()
      return Scope.close(scope, exit)
    }
    return Effect.sync(() => {
      if (open.detached()) return
      // A client abort ends the stream as `client-gone`, not `interrupted`.
      if (isClientAbort(exit)) {
        open.connection.lostUnsafe(NodeBody.goneError(undefined, "the client closed the connection"))
      }
      open.close(exit)
    })
  })
  // sluice's own server: a slot and a registration the stream gives back
  // itself; another one: its scoped calls.
  const admit: Effect.Effect<ConnectionLimitError | undefined> = plain === undefined
    ? Effect.map(
      Effect.result(Scope.provide(server.admit(request), scope)),
      (r) => Result.isFailure(r) ? r.failure : undefined
    )
    : Effect.sync(() => {
      const admission = plain.admitNow(request)
      if (admission instanceof ConnectionLimitError) return admission
      held.release = admission
      return undefined
    })
  return Effect.flatMap(Effect.andThen(untilDetached, admit), (refused) => {
    if (refused !== undefined) return Effect.succeed(answering.answer(refusedResponse(refused)))
    // Its attributes are set at the end (a map the stream need not keep meanwhile).
    return Effect.flatMap(Effect.makeSpan("sluice.sse.connection"), (span) => {
      const connectionId = flatUuid()
      const gzip = options.compression === true && acceptsGzip(request.headers["accept-encoding"])
      const res = nodeResponse(request)
      const body = gzip
        ? NodeBody.gzip()
        : res !== undefined
        ? NodeBody.direct(res, settings.highWaterMark)
        : NodeBody.plain(settings.highWaterMark)
      const clock = Context.get(fiber.context, Clock.Clock)
      const open = new OpenStream(route, connectionId, answering.id, body, span, scope, clock, plain, held.release)
      const closeFrames = (reason: string) => open.closeFrames(reason)
      const opening = lifecycle.open(connectionId, answering.id)
      const retry = lifecycle.retry(Context.get(fiber.context, Random.Random))
      // Only user-supplied data can make the open frames invalid.
      const preamble = lifecycle.userOpenData
        ? Effect.map(validFrames(opening, connectionId), (valid) => [...retry, ...valid])
        : Effect.succeed([...retry, ...opening])
      const connect = (frames: ReadonlyArray<SseEvent.Frame>) => {
        const prepared: SseResponse.Prepared = {
          connection: {
            sink: body.sink,
            capacity: options.capacity,
            // Heartbeat events replace the idle comments.
            heartbeat: route.heartbeatEvents === undefined ? settings.heartbeat : false,
            heartbeatText: options.heartbeatText,
            writeTimeout: settings.writeTimeout,
            id: connectionId,
            terminal: {
              completed: () => closeFrames("completed"),
              failed: (cause) => [...lifecycle.error(cause), ...closeFrames("failed")]
            }
          },
          preamble: frames,
          closeFrames
        }
        const info: SseResponse.StreamInfo<P> = {
          connectionId,
          lastEventId,
          principal,
          request,
          correlationId: answering.id
        }
        const opened = Effect.flatMap(start(info, prepared), (started) => {
          if (HttpServerResponse.isHttpServerResponse(started)) {
            open.discard()
            return Effect.succeed(answering.answer(started))
          }
          open.connection = started
          held.open = open
          started.addObserver(open.ended)
          // The socket side went away (the pipe to the client broke).
          body.onGone(started)
          const response = answering.answer(respond(route, body, gzip))
          const beating = route.heartbeatEvents === undefined
            ? Effect.void
            : Effect.asVoid(Effect.forkIn(route.heartbeatEvents(started), scope))
          if (plain === undefined) return Effect.as(Effect.andThen(server.register(open), beating), response)
          plain.enlist(open)
          return Effect.as(beating, response)
        })
        // No captured call site: it would always be this line, and costs an
        // Error (and its retained stack frames) per connection.
        return Effect.withParentSpan(Scope.provide(opened, scope), span, { captureStackTrace: false })
      }
      return Effect.flatMap(preamble, connect)
    })
  })
}

// The response of an open stream.
const respond = (route: Route, body: NodeBody.NodeBody, gzip: boolean): HttpServerResponse.HttpServerResponse => {
  if (body.body === undefined) {
    // The stream's own head: an empty 200 whose `end` the stream skips (see
    // `NodeBody.direct`). The same response for every stream of the route.
    body.arm()
    return route.head
  }
  return HttpServerResponse.raw(body.body, {
    contentType: streamContentType,
    headers: {
      ...streamHeaders,
      ...(gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : {}),
      ...route.options.headers
    }
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
            Effect.catchTag("LogError", () => Effect.succeed(recordUnavailable())),
            Effect.catchTag(
              "TopicLimitError",
              (e) => Effect.succeed(problem(503, "Service Unavailable", e.message, { "retry-after": "5" }))
            ),
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
