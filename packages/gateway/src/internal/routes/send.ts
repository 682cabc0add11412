/**
 * `POST /internal/send`: the application sends events to keyed streams.
 *
 * ```text
 * Authorization: Bearer <GATEWAY_SECRET>
 * { "token" | "key", "event"?: { "event"?, "data", "id"? }, "close"?: true, "reason"? }   or an array of them
 * ```
 *
 * Every item is checked before any is sent (a bad one refuses the request
 * and touches no stream). A single item is answered with its own status:
 * 200 `{ "result": "delivered" | "pending" | "dropped" | "closed" | "not_connected" }`,
 * 404 (token unknown or closed), 409 (key already closed by a terminal
 * event), 503 (too many keys, or the waiting events' memory budget is spent). An array is answered 200
 * `{ "results": [{ "status", "result"? , "detail"? }] }`, one per item.
 *
 * @internal
 */
import type { Registry, SseEvent } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Metric from "effect/Metric"
import { timingSafeEqual } from "node:crypto"
import type { Config } from "../../Config.ts"
import * as Keyed from "../../Keyed.ts"
import { parseJson, readText } from "../body.ts"
import { asObject, checkedEvent, dataText, onlyFields, optionalString, reasonPattern } from "../input.ts"
import { refusals, sends } from "../metrics.ts"
import { answer, isRefusal, problem, type Refusal, refusal, title } from "../problem.ts"

const route = "send"
const maxBatch = 1_000
const itemFields = ["token", "key", "event", "close", "reason"]
const eventFields = ["event", "data", "id"]

interface Item {
  readonly target: Keyed.Target
  readonly event: SseEvent.Event | undefined
  readonly close: string | undefined
}

const bearer = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match === null ? undefined : match[1]
}

/** Constant-time comparison of a presented secret. @internal */
export const sameSecret = (presented: string | undefined, secret: string): boolean => {
  if (presented === undefined) return false
  const a = Buffer.from(presented)
  const b = Buffer.from(secret)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** `undefined` when the request carries the secret, else the refusal. @internal */
export const checkSecret = (request: HttpServerRequest, secret: string | undefined): Refusal | undefined => {
  if (secret === undefined) {
    return refusal("disabled", 403, "this gateway has no GATEWAY_SECRET: /internal/send is disabled")
  }
  const presented = bearer(request.headers["authorization"])
  if (presented === undefined) {
    return refusal("no_credentials", 401, "an Authorization: Bearer <GATEWAY_SECRET> header is required", {
      "www-authenticate": "Bearer"
    })
  }
  if (!sameSecret(presented, secret)) {
    return refusal("wrong_secret", 401, "the bearer token is not this gateway's secret", {
      "www-authenticate": "Bearer"
    })
  }
  return undefined
}

const parseItem = (u: unknown, where: string, maxEventBytes: number): Item | Refusal => {
  const o = asObject(u)
  if (o === undefined) return refusal("invalid_shape", 400, `${where}: expected a JSON object`)
  const unknown = onlyFields(o, itemFields, where)
  if (unknown !== undefined) return unknown
  const token = optionalString(o, "token", where)
  if (isRefusal(token)) return token
  const key = optionalString(o, "key", where)
  if (isRefusal(key)) return key
  if ((token === undefined) === (key === undefined)) {
    return refusal("invalid_shape", 400, `${where}: give exactly one of "token" and "key"`)
  }
  if ((token ?? key) === "" || (key !== undefined && key.length > 1024)) {
    return refusal(
      "invalid_field",
      400,
      `${where}: a token or key is a non-empty string (keys: at most 1024 characters)`
    )
  }
  if (o["close"] !== undefined && typeof o["close"] !== "boolean") {
    return refusal("invalid_field", 400, `${where}: close must be true or false`)
  }
  const close = o["close"] === true
  const reason = optionalString(o, "reason", where)
  if (isRefusal(reason)) return reason
  if (reason !== undefined && !close) return refusal("invalid_shape", 400, `${where}: "reason" goes with "close": true`)
  if (reason !== undefined && !reasonPattern.test(reason)) {
    return refusal("invalid_field", 400, `${where}: a reason is 1 to 128 of A-Z a-z 0-9 _ . : -`)
  }
  let event: SseEvent.Event | undefined
  if (o["event"] !== undefined) {
    const e = asObject(o["event"])
    if (e === undefined) return refusal("invalid_shape", 400, `${where}.event: expected a JSON object`)
    const unknownEvent = onlyFields(e, eventFields, `${where}.event`)
    if (unknownEvent !== undefined) return unknownEvent
    const name = optionalString(e, "event", `${where}.event`)
    if (isRefusal(name)) return name
    const id = optionalString(e, "id", `${where}.event`)
    if (isRefusal(id)) return id
    const checked = checkedEvent({ event: name, data: dataText(e["data"] ?? ""), id }, `${where}.event`, maxEventBytes)
    if (isRefusal(checked)) return checked
    event = checked
  }
  if (event === undefined && !close) {
    return refusal("invalid_shape", 400, `${where}: nothing to do (no event, no close)`)
  }
  return {
    target: token !== undefined ? { _tag: "Token", token } : { _tag: "Key", key: key! },
    event,
    close: close ? reason ?? "completed" : undefined
  }
}

type Outcome =
  | { readonly status: 200; readonly result: string }
  | { readonly status: number; readonly reason: string; readonly detail: string }

const failed = (e: Registry.SendError | Keyed.UnknownTokenError): Outcome => {
  switch (e._tag) {
    case "UnknownTokenError":
      return { status: 404, reason: "unknown_token", detail: e.message }
    case "KeyClosedError":
      return { status: 409, reason: "key_closed", detail: e.message }
    case "PendingFullError":
      return { status: 429, reason: "outbox_full", detail: e.message }
    case "TooManyKeysError":
      return { status: 503, reason: "too_many_keys", detail: e.message }
    case "PendingBudgetError":
      return { status: 503, reason: "pending_budget", detail: e.message }
    case "InvalidEventError":
      return { status: 400, reason: "invalid_event", detail: e.message }
    case "RegistryUnavailableError":
      return { status: 503, reason: "registry_unavailable", detail: e.message }
  }
}

// The counters by attribute, made once each (not per request).
const memo = <A>(make: (key: string) => A): (key: string) => A => {
  const made = new Map<string, A>()
  return (key) => {
    let value = made.get(key)
    if (value === undefined) made.set(key, value = make(key))
    return value
  }
}
const counted = memo((result) => Metric.withAttributes(sends, { result }))
const refused = memo((reason) => Metric.withAttributes(refusals, { route, reason }))

const run = (keyed: Keyed.Service, item: Item): Effect.Effect<Outcome> => {
  const sent: Effect.Effect<string, Registry.SendError | Keyed.UnknownTokenError> = item.event === undefined
    ? keyed.close(item.target, item.close!)
    : keyed.send(item.target, item.event, item.close === undefined ? {} : { terminal: item.close })
  return sent.pipe(
    Effect.map((result): Outcome => ({ status: 200, result })),
    Effect.catch((e) => Effect.succeed(failed(e))),
    Effect.tap((o) => Metric.update("result" in o ? counted(o.result) : refused(o.reason), 1))
  )
}

/** @internal */
export const layer = (config: Config) =>
  HttpRouter.add(
    "POST",
    "/internal/send",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest
      const denied = checkSecret(request, config.secret)
      if (denied !== undefined) return yield* answer(route, denied)
      const text = yield* readText(config.maxBodyBytes)
      if (isRefusal(text)) return yield* answer(route, text)
      const json = parseJson(text)
      if (isRefusal(json)) return yield* answer(route, json)
      const batch = Array.isArray(json)
      const raw = batch ? json : [json]
      if (batch && (raw.length === 0 || raw.length > maxBatch)) {
        return yield* answer(route, refusal("invalid_shape", 400, `an array of 1 to ${maxBatch} items is expected`))
      }
      const items: Array<Item> = []
      for (let i = 0; i < raw.length; i++) {
        const item = parseItem(raw[i], batch ? `item ${i}` : "body", config.maxEventBytes)
        if (isRefusal(item)) return yield* answer(route, item)
        items.push(item)
      }
      const keyed = yield* Keyed.Keyed
      const outcomes: Array<Outcome> = []
      for (const item of items) outcomes.push(yield* run(keyed, item))
      if (!batch) {
        const o = outcomes[0]!
        if ("result" in o) return HttpServerResponse.jsonUnsafe({ result: o.result })
        // Room (or Redis) may come back: say when to try again.
        return problem(o.status, o.detail, o.status === 503 || o.status === 429 ? { "retry-after": "5" } : {})
      }
      return HttpServerResponse.jsonUnsafe({
        results: outcomes.map((o) =>
          "result" in o ? o : { status: o.status, title: title(o.status), reason: o.reason, detail: o.detail }
        )
      })
    })
  )
