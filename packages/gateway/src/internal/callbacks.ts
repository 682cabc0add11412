/**
 * The HTTP callbacks to the application behind `Callbacks.make`: `connect`
 * (waited for, with a timeout and a bound on concurrent calls; its answer is
 * checked) and `disconnect` (queued, never waited for; a full queue drops the
 * call, logged and counted).
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type * as Callbacks from "../Callbacks.ts"
import * as metrics from "./metrics.ts"

/** @internal */
export class UnavailableError extends Data.TaggedError("UnavailableError")<{
  readonly reason: "timeout" | "unreachable" | "busy" | "bad_status" | "bad_answer"
  readonly detail: string
}> {
  override get message(): string {
    return `the application could not answer the callback (${this.reason}): ${this.detail}`
  }
}

const maxAnswerBytes = 1024 * 1024

interface Answer {
  readonly status: number
  readonly body: string
}

const counted = (action: "connect" | "disconnect", result: string) =>
  Metric.withAttributes(metrics.callbacks, { action, result })

// The event data the app gave: a string is sent as is, anything else as JSON.
const dataText = (data: unknown): string | undefined => {
  if (typeof data === "string") return data
  try {
    const json = JSON.stringify(data)
    return typeof json === "string" ? json : undefined
  } catch {
    return undefined
  }
}

const optionalString = (o: Record<string, unknown>, name: string): string | undefined => {
  const v = o[name]
  return typeof v === "string" ? v : undefined
}

/** Reads a 2xx answer: empty, or `{ key?, events? }`. @internal */
export const parseAccepted = (
  body: string,
  key: string
): Callbacks.ConnectAnswer | string => {
  if (body.trim() === "") return { _tag: "Accepted", key, events: [] }
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return "the answer is not JSON"
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return "the answer is not a JSON object"
  const o = json as Record<string, unknown>
  if (o["key"] !== undefined && (typeof o["key"] !== "string" || o["key"] === "")) {
    return "`key` must be a non-empty string"
  }
  const events: Array<Callbacks.FirstEvent> = []
  if (o["events"] !== undefined) {
    if (!Array.isArray(o["events"])) return "`events` must be an array"
    for (const e of o["events"] as Array<unknown>) {
      if (typeof e !== "object" || e === null) return "each of `events` must be an object"
      const ev = e as Record<string, unknown>
      const data = dataText(ev["data"] ?? "")
      if (data === undefined) return "an event's `data` cannot be serialized"
      if (ev["event"] !== undefined && typeof ev["event"] !== "string") return "an event's `event` must be a string"
      if (ev["id"] !== undefined && typeof ev["id"] !== "string") return "an event's `id` must be a string"
      events.push({ event: optionalString(ev, "event"), data, id: optionalString(ev, "id") })
    }
  }
  return { _tag: "Accepted", key: optionalString(o, "key") ?? key, events }
}

const parseRefused = (status: 401 | 403 | 404, body: string): Callbacks.ConnectAnswer => {
  let o: Record<string, unknown> = {}
  try {
    const json: unknown = JSON.parse(body)
    if (typeof json === "object" && json !== null && !Array.isArray(json)) o = json as Record<string, unknown>
  } catch {
    // A refusal without a JSON body is still a refusal.
  }
  const reason = optionalString(o, "reason")
  return {
    _tag: "Refused",
    status,
    // A reason goes on the wire (`connection_close`): only a safe word.
    reason: reason !== undefined && /^[A-Za-z0-9_.:-]{1,128}$/.test(reason) ? reason : undefined,
    message: (optionalString(o, "message") ?? optionalString(o, "detail"))?.slice(0, 1024)
  }
}

/** @internal */
export const make = (options: Callbacks.Options): Effect.Effect<Callbacks.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const url = options.url
    const timeoutMillis = options.timeoutMillis ?? 5_000
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 64))
    const permits = yield* Semaphore.make(concurrency)
    const context = yield* Effect.context<never>()

    const post = (body: unknown, correlationId: string): Effect.Effect<Answer, UnavailableError> =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(url!, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "x-correlation-id": correlationId,
              ...(options.secret === undefined ? {} : { authorization: `Bearer ${options.secret}` })
            },
            body: JSON.stringify(body),
            signal
          })
          const text = await response.text()
          return { status: response.status, body: text.length > maxAnswerBytes ? "" : text }
        },
        catch: (cause) =>
          new UnavailableError({ reason: "unreachable", detail: String((cause as Error)?.message ?? cause) })
      })

    // A slot, then the call, all within the timeout.
    const call = (body: unknown, correlationId: string): Effect.Effect<Answer, UnavailableError> =>
      Effect.gen(function*() {
        const started = Date.now()
        const answer = yield* permits.withPermits(1)(post(body, correlationId)).pipe(
          Effect.timeoutOrElse({
            duration: timeoutMillis,
            orElse: () =>
              Effect.fail(
                new UnavailableError({ reason: "timeout", detail: `no answer within ${timeoutMillis} ms` })
              )
          })
        )
        metrics.callbackSeconds.updateUnsafe((Date.now() - started) / 1000, context)
        return answer
      })

    const connect = (c: Callbacks.ConnectCall): Effect.Effect<Callbacks.ConnectAnswer, UnavailableError> =>
      Effect.gen(function*() {
        if (url === undefined) return { _tag: "Accepted", key: c.key, events: [] } as const
        const answer = yield* call({
          action: "connect",
          token: c.token,
          key: c.key,
          correlation_id: c.correlationId,
          request: c.request
        }, c.correlationId)
        if (answer.status >= 200 && answer.status < 300) {
          const accepted = parseAccepted(answer.body, c.key)
          if (typeof accepted === "string") {
            return yield* Effect.fail(new UnavailableError({ reason: "bad_answer", detail: accepted }))
          }
          return accepted
        }
        if (answer.status === 401 || answer.status === 403 || answer.status === 404) {
          return parseRefused(answer.status, answer.body)
        }
        return yield* Effect.fail(
          new UnavailableError({ reason: "bad_status", detail: `the application answered ${answer.status}` })
        )
      }).pipe(
        Effect.tap((answer) =>
          Effect.sync(() =>
            counted("connect", answer._tag === "Accepted" ? "accepted" : "refused").updateUnsafe(1, context)
          )
        ),
        Effect.tapError((e) =>
          Effect.andThen(
            Effect.sync(() => counted("connect", e.reason).updateUnsafe(1, context)),
            Effect.logWarning("connect callback failed").pipe(
              Effect.annotateLogs({ reason: e.reason, detail: e.detail, correlation_id: c.correlationId })
            )
          )
        )
      )

    // Disconnects wait in a bounded queue; workers call them with the same slots.
    const queue = yield* Queue.bounded<Callbacks.DisconnectCall>(Math.max(1, options.queueCapacity ?? 10_000))
    let outstanding = 0
    // Resolved when the last outstanding disconnect is done (set while draining).
    let drained: Deferred.Deferred<void> | undefined
    const settled = () => {
      outstanding--
      if (outstanding === 0 && drained !== undefined) Deferred.doneUnsafe(drained, Effect.void)
    }
    const disconnect = (d: Callbacks.DisconnectCall) =>
      call(
        { action: "disconnect", token: d.token, key: d.key, reason: d.reason, correlation_id: d.correlationId },
        d.correlationId
      )
        .pipe(
          Effect.flatMap((answer) =>
            answer.status >= 200 && answer.status < 300
              ? Effect.sync(() => counted("disconnect", "accepted").updateUnsafe(1, context))
              : Effect.fail(
                new UnavailableError({ reason: "bad_status", detail: `the application answered ${answer.status}` })
              )
          ),
          Effect.catch((e) =>
            Effect.andThen(
              Effect.sync(() => counted("disconnect", e.reason).updateUnsafe(1, context)),
              Effect.logWarning("disconnect callback failed").pipe(
                Effect.annotateLogs({ reason: e.reason, detail: e.detail, token: d.token, key: d.key })
              )
            )
          ),
          Effect.ensuring(Effect.sync(settled))
        )
    if (url !== undefined) {
      for (let i = 0; i < concurrency; i++) {
        yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(queue), disconnect)))
      }
      // Added after the workers: runs before they are interrupted.
      const drainMillis = options.drainTimeoutMillis ?? timeoutMillis
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          if (outstanding === 0) return
          const done = Deferred.makeUnsafe<void>()
          drained = done
          yield* Effect.timeoutOption(Deferred.await(done), drainMillis)
          if (outstanding > 0) {
            counted("disconnect", "abandoned").updateUnsafe(outstanding, context)
            yield* Effect.logWarning("disconnect callbacks abandoned at shutdown").pipe(
              Effect.annotateLogs({ count: outstanding })
            )
          }
        })
      )
    }

    return {
      enabled: url !== undefined,
      connect,
      disconnectUnsafe: (d) => {
        if (url === undefined) return
        if (Queue.offerUnsafe(queue, d)) {
          outstanding++
          return
        }
        counted("disconnect", "dropped").updateUnsafe(1, context)
      }
    }
  })
