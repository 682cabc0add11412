/**
 * Topic mode: `POST /publish` (form or JSON: `topic`, `data`, `type`, `id`;
 * JSON may be an array) and `GET /subscribe?topic=a&topic=b` (one stream for
 * several topics, resumed with one `Last-Event-ID`).
 *
 * Authorization: with a JWT key configured, a publisher's token must list
 * every topic it publishes to in its `publish` claim and a subscriber's
 * every topic it names in its `subscribe` claim (else 403 before any event);
 * the application may also publish with the gateway secret as its bearer.
 * Without a JWT key, subscribing is open and publishing needs the secret.
 *
 * @internal
 */
import { SseAuth, SseResponse, type SseServer } from "@sluice/http"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import type { Config } from "../../Config.ts"
import * as Feed from "../../Feed.ts"
import * as Jwt from "../../Jwt.ts"
import { mediaType, parseJson, readText } from "../body.ts"
import { asObject, checkedEvent, checkTopic, dataText, onlyFields, optionalString } from "../input.ts"
import { answer, countRefusal, isRefusal, type Refusal, refusal } from "../problem.ts"
import { sameSecret } from "./send.ts"
import { streamOptions } from "./streamOptions.ts"

const maxBatch = 1_000
const publishFields = ["topic", "data", "type", "id"]

type Verifier = Jwt.Verifier | undefined

const jwtRefusal = (e: Jwt.JwtError): Refusal =>
  refusal(`jwt_${e.reason}`, 401, e.message, { "www-authenticate": "Bearer" })

// A refusal, or `undefined` when the publisher may publish to `topics`:
// decided at once for the gateway's secret (the application's usual
// credential), through the verifier for a JWT.
const authorizePublish = (
  config: Config,
  verifier: Verifier,
  request: HttpServerRequest,
  topics: ReadonlyArray<string>
): Refusal | undefined | Effect.Effect<Refusal | undefined> => {
  const token = Jwt.fromRequest(request, config.jwtCookie)
  if (token instanceof Jwt.JwtError) return jwtRefusal(token)
  if (token === undefined) {
    return config.secret === undefined && verifier === undefined
      ? refusal("disabled", 403, "publishing is disabled: configure GATEWAY_SECRET or a JWT key")
      : refusal("no_credentials", 401, "a bearer token is required to publish", { "www-authenticate": "Bearer" })
  }
  if (config.secret !== undefined && sameSecret(token, config.secret)) return undefined
  if (verifier === undefined) {
    return refusal("wrong_secret", 401, "the bearer token is not this gateway's secret", {
      "www-authenticate": "Bearer"
    })
  }
  return Effect.map(Effect.result(verifier.verify(token)), (claims) => {
    if (claims._tag === "Failure") return jwtRefusal(claims.failure)
    const denied = topics.find((t) => !Jwt.allows(claims.success.publish, t))
    return denied === undefined
      ? undefined
      : refusal("topic_forbidden", 403, `the token may not publish to ${JSON.stringify(denied)}`)
  })
}

const parseTopics = (value: unknown, where: string, max: number): ReadonlyArray<string> | Refusal => {
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || list.length > max) {
    return refusal("invalid_topic", 400, `${where}: between 1 and ${max} topics`)
  }
  const out: Array<string> = []
  for (const t of list) {
    const checked = checkTopic(t, where)
    if (isRefusal(checked)) return checked
    out.push(checked)
  }
  return out
}

const publishInput = (
  o: Record<string, unknown>,
  where: string,
  config: Config
): Feed.PublishInput | Refusal => {
  const unknown = onlyFields(o, publishFields, where)
  if (unknown !== undefined) return unknown
  if (o["topic"] === undefined) return refusal("invalid_shape", 400, `${where}: "topic" is required`)
  const topics = parseTopics(o["topic"], where, config.maxTopicsPerSubscription)
  if (isRefusal(topics)) return topics
  const type = optionalString(o, "type", where)
  if (isRefusal(type)) return type
  const id = optionalString(o, "id", where)
  if (isRefusal(id)) return id
  if (id === "") return refusal("invalid_event", 400, `${where}: an id cannot be empty`)
  const event = checkedEvent({ event: type, data: dataText(o["data"] ?? ""), id }, where, config.maxEventBytes)
  if (isRefusal(event)) return event
  return { topics, data: event.data, event: type, id }
}

// The events of a publish request, or why it is refused.
const readPublish = (config: Config) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest
    const type = mediaType(request)
    const isForm = type === "application/x-www-form-urlencoded"
    if (!isForm && type !== "application/json") {
      return refusal(
        "unsupported_media_type",
        415,
        "send application/json or application/x-www-form-urlencoded"
      )
    }
    const text = yield* readText(config.maxBodyBytes)
    if (isRefusal(text)) return text
    if (isForm) {
      const fields: Record<string, unknown> = {}
      for (const [name, value] of new URLSearchParams(text)) {
        if (name === "topic") fields["topic"] = [...((fields["topic"] as Array<string> | undefined) ?? []), value]
        else if (name in fields) return refusal("invalid_shape", 400, `form: ${name} is given twice`)
        else fields[name] = value
      }
      const one = publishInput(fields, "form", config)
      return isRefusal(one) ? one : { batch: false, events: [one] }
    }
    const json = parseJson(text)
    if (isRefusal(json)) return json
    const batch = Array.isArray(json)
    const raw: Array<unknown> = batch ? json : [json]
    if (batch && (raw.length === 0 || raw.length > maxBatch)) {
      return refusal("invalid_shape", 400, `an array of 1 to ${maxBatch} events is expected`)
    }
    const events: Array<Feed.PublishInput> = []
    for (let i = 0; i < raw.length; i++) {
      const where = batch ? `item ${i}` : "body"
      const o = asObject(raw[i])
      if (o === undefined) return refusal("invalid_shape", 400, `${where}: expected a JSON object`)
      const input = publishInput(o, where, config)
      if (isRefusal(input)) return input
      events.push(input)
    }
    return { batch, events }
  })

const publishRoute = (config: Config, verifier: Verifier) =>
  HttpRouter.add(
    "POST",
    "/publish",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest
      const read = yield* readPublish(config)
      if (isRefusal(read)) return yield* answer("publish", read)
      const decided = authorizePublish(config, verifier, request, read.events.flatMap((e) => e.topics))
      const denied = Effect.isEffect(decided) ? yield* decided : decided
      if (denied !== undefined) return yield* answer("publish", denied)
      const feed = yield* Feed.Feed
      const published = yield* Effect.result(feed.publish(read.events))
      if (published._tag === "Failure") {
        const e = published.failure
        // The address of the record's server stays in the log.
        if (e._tag === "LogError") yield* Effect.logWarning("a publish was not recorded", { error: e.message })
        return yield* answer(
          "publish",
          e._tag === "PayloadTooLargeError"
            ? refusal("too_large", 413, e.message)
            : e._tag === "LogError"
            // The shared record did not answer (an append that timed out may still be recorded).
            ? refusal("log_unavailable", 503, "the topics' record is unavailable; try again later", {
              "retry-after": "5"
            })
            : refusal("invalid_event", 400, e.message)
        )
      }
      const ids = published.success.map((p) => p.id)
      return HttpServerResponse.jsonUnsafe(read.batch ? { ids } : { id: ids[0] })
    })
  )

const requestTopics = (request: HttpServerRequest, max: number): ReadonlyArray<string> | Refusal => {
  const q = request.url.indexOf("?")
  const topics = q === -1 ? [] : new URLSearchParams(request.url.slice(q + 1)).getAll("topic")
  if (topics.length === 0) return refusal("invalid_topic", 400, "name at least one topic: /subscribe?topic=a&topic=b")
  return parseTopics([...new Set(topics)], "query", max)
}

interface Subscriber {
  readonly expiresAt: number | undefined
}

const subscribeRoute = (config: Config, verifier: Verifier) => {
  const refused = <A>(reason: string, error: A) => Effect.andThen(countRefusal("subscribe", reason), Effect.fail(error))
  const authorize = (
    request: HttpServerRequest
  ): Effect.Effect<Subscriber, SseAuth.UnauthorizedError | SseAuth.ForbiddenError> =>
    Effect.gen(function*() {
      if (verifier === undefined) return { expiresAt: undefined }
      const token = Jwt.fromRequest(request, config.jwtCookie)
      if (token === undefined) {
        return yield* refused(
          "no_credentials",
          new SseAuth.UnauthorizedError({ detail: "a subscriber token is required" })
        )
      }
      if (token instanceof Jwt.JwtError) {
        return yield* refused(`jwt_${token.reason}`, new SseAuth.UnauthorizedError({ detail: token.message }))
      }
      const claims = yield* Effect.result(verifier.verify(token))
      if (claims._tag === "Failure") {
        const e = claims.failure
        return yield* refused(`jwt_${e.reason}`, new SseAuth.UnauthorizedError({ detail: e.message }))
      }
      // Checked by the handler before this runs.
      const topics = requestTopics(request, config.maxTopicsPerSubscription) as ReadonlyArray<string>
      const denied = topics.find((t) => !Jwt.allows(claims.success.subscribe, t))
      if (denied !== undefined) {
        return yield* refused(
          "topic_forbidden",
          new SseAuth.ForbiddenError({ detail: `the token may not subscribe to ${JSON.stringify(denied)}` })
        )
      }
      return { expiresAt: claims.success.expiresAt }
    })
  const stream = SseResponse.attach<Subscriber, never, Feed.Feed>(
    (info, prepared) =>
      Effect.gen(function*() {
        const feed = yield* Feed.Feed
        const topics = requestTopics(info.request, config.maxTopicsPerSubscription) as ReadonlyArray<string>
        const { connection } = yield* Effect.orDie(feed.subscribe({
          ...prepared.connection,
          preamble: prepared.preamble,
          topics,
          lastEventId: info.lastEventId,
          strategy: config.slowClient
        }))
        const expiresAt = info.principal.expiresAt
        if (expiresAt !== undefined) {
          const now = yield* Clock.currentTimeMillis
          // The stream ends when the token does.
          yield* Effect.forkScoped(
            Effect.andThen(
              Effect.sleep(Math.max(0, expiresAt - now)),
              connection.close("token_expired", prepared.closeFrames("token_expired"))
            )
          )
        }
        return connection
      }),
    streamOptions<Subscriber>(config, { authorize })
  )
  return HttpRouter.add(
    "GET",
    "/subscribe",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest
      const topics = requestTopics(request, config.maxTopicsPerSubscription)
      if (isRefusal(topics)) return yield* answer("subscribe", topics)
      return yield* stream
    })
  )
}

/** @internal */
export const layer = (
  config: Config,
  verifier: Verifier
): Layer.Layer<
  never,
  never,
  HttpRouter.HttpRouter | HttpRouter.Request<"Requires", SseServer.SseServer | Feed.Feed>
> => Layer.mergeAll(publishRoute(config, verifier), subscribeRoute(config, verifier))
