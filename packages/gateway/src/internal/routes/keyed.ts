/**
 * The keyed stream routes (`GATEWAY_ROUTES`): a client connects, the app is
 * called back and accepts (the stream joins the key: its waiting events
 * first, then live ones; a newer client for the key replaces it) or refuses
 * (its 401/403/404, or the not-found stream sequence). When the stream ends,
 * the app is told with a disconnect callback carrying the reason.
 *
 * @internal
 */
import { Connection, SseEvent } from "@sluice/core"
import { SseResponse, type SseServer } from "@sluice/http"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import * as Callbacks from "../../Callbacks.ts"
import type { Config } from "../../Config.ts"
import * as Keyed from "../../Keyed.ts"
import { checkedEvent } from "../input.ts"
import { countRefusal, isRefusal, refuse } from "../problem.ts"
import { streamOptions } from "./streamOptions.ts"

const route = "keyed"

/** An opaque, unguessable token naming one connection. @internal */
export const newToken = (): string => randomBytes(18).toString("base64url")

// The reason a stream ended, as the disconnect callback says it.
const endReason = (outcome: Connection.Outcome): string => {
  switch (outcome._tag) {
    case "Closed":
      return outcome.reason
    case "ClientGone":
      return "client_gone"
    case "Completed":
      return "completed"
    case "Failed":
      return "failed"
    case "Interrupted":
      return "interrupted"
  }
}

const queryObject = (url: string): Record<string, string | Array<string>> => {
  const q = url.indexOf("?")
  const out: Record<string, string | Array<string>> = {}
  if (q === -1) return out
  for (const [name, value] of new URLSearchParams(url.slice(q + 1))) {
    const prior = out[name]
    out[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value]
  }
  return out
}

// Headers the app may see: the allowlist, never a value holding the secret.
const forwarded = (
  headers: Readonly<Record<string, string | undefined>>,
  allow: ReadonlyArray<string>,
  secret: string | undefined
): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of allow) {
    const value = headers[name]
    if (value === undefined) continue
    if (secret !== undefined && value.includes(secret)) continue
    out[name] = value
  }
  return out
}

const keyParam = (pattern: string): string => pattern.split("/").find((s) => s.startsWith(":"))!.slice(1)

const streamRoute = (config: Config, pattern: string) => {
  const param = keyParam(pattern)
  const handler = SseResponse.attach(
    (info, prepared) =>
      Effect.gen(function*() {
        const callbacks = yield* Callbacks.Callbacks
        const keyed = yield* Keyed.Keyed
        const params = yield* HttpRouter.params
        const key = params[param] ?? ""
        if (key === "" || key.length > 1024) {
          return yield* refuse(route, "invalid_key", 400, "the key is empty or longer than 1024 characters")
        }
        const request = info.request
        const correlationId = info.correlationId!
        const token = newToken()
        const path = request.url.split("?")[0]!
        const called = yield* Effect.result(callbacks.connect({
          token,
          key,
          correlationId,
          request: {
            method: request.method,
            path,
            query: queryObject(request.url),
            headers: forwarded(request.headers, config.forwardHeaders, config.secret)
          }
        }))
        if (called._tag === "Failure") {
          const e = called.failure
          return e.reason === "bad_answer" || (e.reason === "bad_status" && !/ 5\d\d$/.test(e.detail))
            ? yield* refuse(route, `callback_${e.reason}`, 502, e.message)
            : yield* refuse(route, `callback_${e.reason}`, 503, e.message, { "retry-after": "5" })
        }
        const answer = called.success
        if (answer._tag === "Refused") {
          const message = answer.message ?? (answer.status === 404 ? "not found" : "refused by the application")
          if (config.refusal === "status") {
            return yield* refuse(route, `app_${answer.status}`, answer.status, message)
          }
          // What EventSource clients of the Flask gateway expect: a stream that says so and ends.
          const reason = answer.reason ?? (answer.status === 404 ? "not_found" : "forbidden")
          yield* countRefusal(route, `app_${answer.status}`)
          return yield* Connection.make({
            ...prepared.connection,
            producer: Stream.fromIterable([
              ...prepared.preamble,
              SseEvent.make({ event: "error", data: JSON.stringify({ message, status: answer.status }) })
            ]),
            terminal: { completed: () => prepared.closeFrames(reason) }
          })
        }
        const first: Array<SseEvent.Event> = []
        for (const e of answer.events) {
          const checked = checkedEvent(
            { event: e.event, data: e.data, id: e.id },
            "connect answer",
            config.maxEventBytes
          )
          if (isRefusal(checked)) return yield* refuse(route, "callback_bad_answer", 502, checked.detail)
          first.push(checked)
        }
        if (answer.key.length > 1024) {
          return yield* refuse(route, "callback_bad_answer", 502, "the key the application named is too long")
        }
        const connected = yield* Effect.result(keyed.connect(answer.key, token, {
          ...prepared.connection,
          preamble: [...prepared.preamble, ...first],
          closeFrames: prepared.closeFrames,
          // Sent by this process, once, when the token is unknown everywhere.
          onEnd: (outcome) =>
            callbacks.disconnectUnsafe({ token, key: answer.key, reason: endReason(outcome), correlationId })
        }))
        if (connected._tag === "Failure") {
          const e = connected.failure
          const reason = e._tag === "RegistryUnavailableError" ? "registry_unavailable" : "too_many_keys"
          // The application accepted this token: it learns that no stream came of it.
          callbacks.disconnectUnsafe({ token, key: answer.key, reason, correlationId })
          if (e._tag === "RegistryUnavailableError") {
            // The address of the registry's server stays in the log.
            yield* Effect.logWarning("a keyed connection could not be registered", { error: e.message })
            return yield* refuse(route, "registry_unavailable", 503, "the key registry is unavailable; try again", {
              "retry-after": "5"
            })
          }
          return yield* refuse(route, "too_many_keys", 503, e.message, { "retry-after": "5" })
        }
        return connected.success as Connection.Connection | HttpServerResponse.HttpServerResponse
      }),
    streamOptions(config)
  )
  return HttpRouter.add("GET", pattern as HttpRouter.PathInput, handler)
}

/** @internal */
export const layer = (
  config: Config
): Layer.Layer<
  never,
  never,
  | HttpRouter.HttpRouter
  | HttpRouter.Request<"Requires", SseServer.SseServer | Callbacks.Callbacks | Keyed.Keyed>
> => {
  const [first, ...rest] = config.routes.map((p) => streamRoute(config, p))
  return Layer.mergeAll(first!, ...rest)
}
