/**
 * Checks the demo's write routes make before reading a body, each answering
 * with a problem-details response when it refuses:
 * - `requireJson`: `415` unless the body is declared `application/json`, so
 *   that no other site can post to the demo with an HTML form or a "simple"
 *   cross-origin `fetch` (those can only send `text/plain`, form or
 *   multipart bodies without a CORS preflight);
 * - `requireBearer`: `401` with `WWW-Authenticate: Bearer` unless the request
 *   carries the token (compared in constant time);
 * - `limitRate`: `429` with `Retry-After` when the client is over its rate.
 */
import { Effect, Option } from "effect"
import { HttpServerRequest, type HttpServerResponse } from "effect/http"
import { createHash, timingSafeEqual } from "node:crypto"
import { problem } from "./problem.ts"
import type { RateLimit } from "./rateLimit.ts"

type Refusal = HttpServerResponse.HttpServerResponse | undefined

/** The client a limit is kept for: the peer address (the demo trusts no forwarding header). */
export const clientKey = (request: HttpServerRequest.HttpServerRequest): string =>
  Option.getOrElse(request.remoteAddress, () => "unknown")

/** `application/json`, with or without parameters (`; charset=utf-8`). */
export const isJson = (contentType: string | undefined): boolean =>
  contentType !== undefined && contentType.split(";")[0]!.trim().toLowerCase() === "application/json"

export const requireJson: Effect.Effect<Refusal, never, HttpServerRequest.HttpServerRequest> = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) =>
    isJson(request.headers["content-type"])
      ? undefined
      : problem(
        415,
        "Unsupported Media Type",
        `the request body must be application/json (got ${JSON.stringify(request.headers["content-type"] ?? "")})`
      )
)

const digest = (text: string) => createHash("sha256").update(text).digest()

export const requireBearer = (token: string): Effect.Effect<Refusal, never, HttpServerRequest.HttpServerRequest> => {
  const expected = digest(token)
  return Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const header = request.headers["authorization"] ?? ""
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header)
    if (match !== null && timingSafeEqual(digest(match[1]!), expected)) return undefined
    return problem(
      401,
      "Unauthorized",
      match === null ? "publishing needs an Authorization: Bearer <token> header" : "the bearer token is not valid",
      { "www-authenticate": `Bearer realm="sluice-demo"` }
    )
  })
}

export const limitRate = (
  limit: RateLimit,
  what: string
): Effect.Effect<Refusal, never, HttpServerRequest.HttpServerRequest> =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const wait = limit.take(clientKey(request))
    return wait === undefined ? undefined : problem(
      429,
      "Too Many Requests",
      `too many ${what} from this client; try again in ${wait} s`,
      { "retry-after": String(wait) }
    )
  })

/** Runs the checks in order and returns the first refusal. */
export const firstRefusal = (
  ...checks: ReadonlyArray<Effect.Effect<Refusal, never, HttpServerRequest.HttpServerRequest>>
): Effect.Effect<Refusal, never, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    for (const check of checks) {
      const refusal = yield* check
      if (refusal !== undefined) return refusal
    }
    return undefined
  })
