/**
 * The SSE client: one producer fiber runs the connect / read / back off loop and offers events to
 * the bounded queue behind `Stream.callback`, so a slow consumer stops socket reads.
 *
 * @internal
 */
import { OptionCheck, SseParser } from "@sluice/core"
import type { SseEvent } from "@sluice/core"
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Headers, HttpClient, type HttpClientError, HttpClientRequest } from "effect/http"
import * as Pull from "effect/Pull"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConnectionState, ConnectOptions, SseClientError } from "../SseClient.ts"
import { SseConnectionError, SseContentTypeError, SseStatusError } from "./clientErrors.ts"

const { check: checkOption, millis: durationMillis } = OptionCheck

const defaultRetryMillis = 3_000
const defaultMaxDelayMillis = 30_000
const minBackoffMillis = 1_000

/** @internal Delay before the next attempt; see `connect`'s documentation. */
export const backoffMillis = (reconnect: number, failures: number, maxDelay: number, draw: number): number => {
  if (failures === 0) return reconnect
  const ceiling = Math.min(maxDelay, Math.max(reconnect, minBackoffMillis) * 2 ** failures)
  return ceiling <= reconnect ? reconnect : Math.round(reconnect + draw * (ceiling - reconnect))
}

const toMillis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

const statusPredicate = (option: ConnectOptions["retryStatus"]): (status: number) => boolean =>
  typeof option === "function"
    ? option
    : option === true
    ? (status) => status === 429 || (status >= 500 && status <= 599)
    : () => false

/** @internal The MIME type essence of a Content-Type header is `text/event-stream`. */
export const isEventStream = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return false
  const semicolon = contentType.indexOf(";")
  const essence = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
  return essence === "text/event-stream"
}

/**
 * @internal The `Last-Event-ID` header value: the id's UTF-8 bytes, one latin1 character each, which
 * is how Node writes header strings. `undefined` when the id holds characters no HTTP field value
 * may carry (controls other than tab): such an id is not sent, rather than failing the request.
 */
export const lastEventIdHeader = (id: string): string | undefined => {
  const bytes = new TextEncoder().encode(id)
  let out = ""
  for (const byte of bytes) {
    if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) return undefined
    out += String.fromCharCode(byte)
  }
  return out
}

const baseRequest = (
  input: string | URL | HttpClientRequest.HttpClientRequest,
  headers: ConnectOptions["headers"]
): HttpClientRequest.HttpClientRequest => {
  let request = HttpClientRequest.isHttpClientRequest(input) ? input : HttpClientRequest.get(input)
  if (request.headers["accept"] === undefined) {
    request = HttpClientRequest.setHeader(request, "accept", "text/event-stream")
  }
  if (request.headers["cache-control"] === undefined) {
    request = HttpClientRequest.setHeader(request, "cache-control", "no-cache")
  }
  return headers === undefined ? request : HttpClientRequest.setHeaders(request, headers)
}

// How one connection ended, when the loop should go on.
interface Lost {
  readonly error: SseConnectionError | SseStatusError
  readonly gotEvent: boolean
  readonly retryAfterMillis: number
}
const noContent = "no-content" as const

const ended: ReadonlyArray<never> = []

const transportError = (url: string, error: HttpClientError.HttpClientError): Effect.Effect<Lost, SseConnectionError> =>
  error.reason._tag === "InvalidUrlError" || error.reason._tag === "EncodeError"
    ? Effect.fail(new SseConnectionError({ url, reason: "invalid-request", cause: error }))
    : Effect.succeed({
      error: new SseConnectionError({ url, reason: "transport", cause: error }),
      gotEvent: false,
      retryAfterMillis: 0
    })

// Settings that cannot work are programming errors: reject them when the stream is described.
const validate = (options: ConnectOptions): void => {
  const check = (name: string, ok: boolean, value: unknown) => checkOption("SseClient.connect", name, ok, value)
  const { bufferSize, idleTimeout, maxAttempts, maxDelay, maxRedirects, retry } = options
  check(
    "maxAttempts (a positive integer or Infinity)",
    maxAttempts === undefined || maxAttempts === Infinity || (Number.isSafeInteger(maxAttempts) && maxAttempts > 0),
    maxAttempts
  )
  check(
    "bufferSize (a positive integer)",
    bufferSize === undefined || (Number.isSafeInteger(bufferSize) && bufferSize > 0),
    bufferSize
  )
  check(
    "maxRedirects (a non-negative integer)",
    maxRedirects === undefined || (Number.isSafeInteger(maxRedirects) && maxRedirects >= 0),
    maxRedirects
  )
  check("idleTimeout (a positive duration)", durationMillis(idleTimeout, 1) > 0, idleTimeout)
  check("retry (a finite duration)", Number.isFinite(durationMillis(retry, 0)), retry)
  check("maxDelay (a finite duration)", Number.isFinite(durationMillis(maxDelay, 0)), maxDelay)
  // The parser checks its own options.
  SseParser.makeParser({ onEvent: () => {}, maxLineSize: options.maxLineSize, maxEventSize: options.maxEventSize })
}

/** @internal */
export const connect = (
  input: string | URL | HttpClientRequest.HttpClientRequest,
  options: ConnectOptions = {}
): Stream.Stream<SseEvent.Event, SseClientError, HttpClient.HttpClient> => {
  validate(options)
  return Stream.callback<SseEvent.Event, SseClientError, HttpClient.HttpClient>(
    (queue) => run(queue, input, options),
    { bufferSize: options.bufferSize ?? 64 }
  )
}

const run = (
  queue: Queue.Queue<SseEvent.Event, SseClientError | Cause.Done>,
  input: string | URL | HttpClientRequest.HttpClientRequest,
  options: ConnectOptions
) => {
  const report = options.onStateChange ?? (() => Effect.void)
  // After `Closed` nothing more is reported: ending the queue lets the consumer close the stream,
  // which may interrupt this fiber on its way out.
  let closed = false
  const notify = (state: ConnectionState) =>
    Effect.suspend(() => {
      if (closed) return Effect.void
      if (state._tag === "Closed") closed = true
      return report(state)
    })
  return Effect.gen(function*() {
    const request = baseRequest(input, options.headers)
    const url = request.url
    // withScope first, so that every request of a redirect chain is aborted with the attempt.
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.withScope,
      HttpClient.followRedirects(options.maxRedirects ?? 10)
    )
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    const retryStatus = statusPredicate(options.retryStatus)
    const maxDelay = toMillis(options.maxDelay, defaultMaxDelayMillis)
    const idleMillis = options.idleTimeout === undefined ? undefined : toMillis(options.idleTimeout, 0)
    const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY
    let reconnectMillis = toMillis(options.retry, defaultRetryMillis)
    // A Last-Event-ID header given with the request seeds the first request like the option does.
    let lastEventId = options.lastEventId ?? request.headers["last-event-id"] ?? ""
    let failures = 0

    // One connection, from request to end of body; its scope aborts the request.
    const attempt = (number: number) =>
      Effect.gen(function*() {
        yield* notify({ _tag: "Connecting", attempt: number, url })
        const header = lastEventId === "" ? undefined : lastEventIdHeader(lastEventId)
        const current = header === undefined
          ? HttpClientRequest.removeHeader(request, "last-event-id")
          : HttpClientRequest.setHeader(request, "last-event-id", header)
        // Idle detection: `waiting` while we wait for bytes, since `since`. Time spent blocked on a
        // slow consumer does not count.
        let waiting = true
        let since = clock.currentTimeMillisUnsafe()
        let gotEvent = false

        const connection = Effect.gen(function*() {
          const response = yield* client.execute(current)
          waiting = false
          const status = response.status
          if (status === 204) return noContent
          if (status !== 200) {
            const error = new SseStatusError({ url, status })
            if (!retryStatus(status)) return yield* Effect.fail(error)
            const retryAfter = response.headers["retry-after"]
            const parsed = retryAfter === undefined ? undefined : Headers.parseRetryAfter(retryAfter)
            const retryAfterMillis = parsed === undefined || Result.isFailure(parsed)
              ? 0
              : Duration.toMillis(Headers.retryAfterDelay(parsed.success, clock.currentTimeMillisUnsafe()))
            return { error, gotEvent: false, retryAfterMillis } satisfies Lost
          }
          const contentType = response.headers["content-type"]
          if (!isEventStream(contentType)) return yield* Effect.fail(new SseContentTypeError({ url, contentType }))
          yield* notify({ _tag: "Open", attempt: number, url: response.request.url })

          let events: Array<SseEvent.Event> = []
          let failure: SseParser.SseParserError | undefined
          const parser = SseParser.makeParser({
            onEvent: (event) => {
              events.push(event)
            },
            onRetry: (millis) => {
              reconnectMillis = millis
            },
            onError: (error) => {
              failure = error
            },
            strict: options.strict,
            maxLineSize: options.maxLineSize,
            maxEventSize: options.maxEventSize,
            lastEventId
          })
          const deliver = Effect.suspend(() => {
            lastEventId = parser.lastEventId
            if (events.length === 0) return Effect.void
            gotEvent = true
            const batch = events
            events = []
            return Queue.offerAll(queue, batch)
          })
          const pull = yield* Stream.toPull(response.stream)
          while (true) {
            since = clock.currentTimeMillisUnsafe()
            waiting = true
            const chunks = yield* Pull.catchDone(pull, () => Effect.succeed(ended))
            waiting = false
            if (chunks === ended) parser.end()
            else for (const chunk of chunks) parser.feed(chunk)
            yield* deliver
            if (failure !== undefined) return yield* Effect.fail(failure)
            if (chunks === ended) {
              return { error: new SseConnectionError({ url, reason: "ended" }), gotEvent, retryAfterMillis: 0 }
            }
          }
        }).pipe(
          Effect.catchTag("HttpClientError", (error) =>
            Effect.map(transportError(url, error), (lost): Lost => ({ ...lost, gotEvent })))
        )

        if (idleMillis === undefined) {
          return yield* connection
        }
        const watchdog = Effect.gen(function*() {
          while (true) {
            const idleFor = waiting ? clock.currentTimeMillisUnsafe() - since : 0
            if (idleFor >= idleMillis) {
              return {
                error: new SseConnectionError({ url, reason: "idle-timeout" }),
                gotEvent,
                retryAfterMillis: 0
              } satisfies Lost
            }
            yield* Effect.sleep(Duration.millis(idleMillis - idleFor))
          }
        })
        return yield* Effect.raceFirst(connection, watchdog)
      }).pipe(Effect.scoped)

    while (true) {
      const outcome = yield* attempt(failures + 1)
      if (outcome === noContent) {
        yield* notify({ _tag: "Closed", reason: "no-content" })
        return yield* Queue.end(queue)
      }
      failures = outcome.gotEvent ? 0 : failures + 1
      if (failures >= maxAttempts) return yield* Effect.fail(outcome.error)
      const delayMillis = Math.max(
        backoffMillis(reconnectMillis, failures, maxDelay, random.nextDoubleUnsafe()),
        outcome.retryAfterMillis
      )
      yield* notify({ _tag: "Reconnecting", attempt: failures + 1, delayMillis, error: outcome.error })
      yield* Effect.sleep(Duration.millis(delayMillis))
    }
  }).pipe(
    Effect.tapError((error) => notify({ _tag: "Closed", reason: "failed", error })),
    Effect.onInterrupt(() => notify({ _tag: "Closed", reason: "interrupted" }))
  )
}

/** @internal */
export const connectWithState = (
  input: string | URL | HttpClientRequest.HttpClientRequest,
  options: ConnectOptions = {}
) =>
  Effect.map(
    SubscriptionRef.make<ConnectionState>({ _tag: "Connecting", attempt: 1, url: baseRequest(input, undefined).url }),
    (state) => ({
      state,
      events: connect(input, {
        ...options,
        onStateChange: (next) =>
          Effect.andThen(
            SubscriptionRef.set(state, next),
            options.onStateChange === undefined ? Effect.void : options.onStateChange(next)
          )
      })
    })
  )
