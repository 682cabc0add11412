/**
 * An RFC 9457 problem-details response (`application/problem+json`).
 *
 * @internal
 */
import * as HttpServerResponse from "effect/http/HttpServerResponse"

/** @internal */
export const problem = (
  status: number,
  title: string,
  detail: string,
  headers: Record<string, string> = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    contentType: "application/problem+json",
    headers: { "cache-control": "no-store", ...headers }
  })
