/**
 * The demo's refusals: RFC 9457 problem-details answers.
 */
import { HttpServerResponse } from "effect/http"

/** An RFC 9457 problem-details answer. */
export const problem = (status: number, title: string, detail: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    contentType: "application/problem+json",
    headers
  })
