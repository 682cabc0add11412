/**
 * Refusals of the gateway's routes: RFC 9457 problem-details answers
 * (`application/problem+json`), and the count of every refusal by route and
 * reason (`sluice_gateway_refusals_total`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Metric from "effect/Metric"
import { refusals } from "./metrics.ts"

const titles: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  502: "Bad Gateway",
  503: "Service Unavailable"
}

/** @internal */
export const title = (status: number): string => titles[status] ?? "Error"

/**
 * An RFC 9457 problem-details answer (`application/problem+json`).
 *
 * @internal
 */
export const problem = (
  status: number,
  detail: string,
  headers: Record<string, string> = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify({ type: "about:blank", title: title(status), status, detail }), {
    status,
    contentType: "application/problem+json",
    headers: { "cache-control": "no-store", ...headers }
  })

/** Counts a refusal answered in another form (a stream that says so). @internal */
export const countRefusal = (route: string, reason: string): Effect.Effect<void> =>
  Metric.update(Metric.withAttributes(refusals, { route, reason }), 1)

/**
 * A refusal: the problem-details answer, counted in
 * `sluice_gateway_refusals_total{route,reason}`.
 *
 * @internal
 */
export const refuse = (
  route: string,
  reason: string,
  status: number,
  detail: string,
  headers: Record<string, string> = {}
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Metric.update(Metric.withAttributes(refusals, { route, reason }), 1).pipe(
    Effect.andThen(Effect.logDebug("refused").pipe(Effect.annotateLogs({ route, reason, status, detail }))),
    Effect.as(problem(status, detail, headers))
  )

/** A refused request, carried as a value until it is answered. @internal */
export interface Refusal {
  readonly _tag: "Refusal"
  readonly reason: string
  readonly status: number
  readonly detail: string
  readonly headers?: Record<string, string> | undefined
}

/** @internal */
export const refusal = (
  reason: string,
  status: number,
  detail: string,
  headers?: Record<string, string>
): Refusal => ({ _tag: "Refusal", reason, status, detail, headers })

/** @internal */
export const isRefusal = (u: unknown): u is Refusal =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Refusal"

/** Answers a refusal for `route`. @internal */
export const answer = (route: string, r: Refusal) => refuse(route, r.reason, r.status, r.detail, r.headers)
