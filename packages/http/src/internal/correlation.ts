/**
 * Correlation ids of SSE routes: read from the request (bounded length, safe
 * characters only), generated otherwise, echoed on every answer.
 *
 * @internal
 */
import { OptionCheck } from "@sluice/core"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { randomUUID } from "node:crypto"
import type * as SseResponse from "../SseResponse.ts"

const { atLeast, check } = OptionCheck

/** @internal */
export interface Correlation {
  readonly read: (request: HttpServerRequest) => string
  /** Adds the response header, if any. */
  readonly echo: (
    response: HttpServerResponse.HttpServerResponse,
    id: string
  ) => HttpServerResponse.HttpServerResponse
}

const safe = /^[A-Za-z0-9._:-]+$/

/** `undefined` when the route does not use correlation ids. @internal */
export const resolve = (
  option: boolean | SseResponse.CorrelationIdOptions | undefined
): Correlation | undefined => {
  if (option === undefined || option === false) return undefined
  const options = option === true ? {} : option
  check(
    "SseResponse",
    "correlationId.maxLength (a finite number, at least 1)",
    atLeast(options.maxLength, 1),
    options.maxLength
  )
  const headers = (options.headers ?? ["x-correlation-id", "x-request-id"]).map((h) => h.toLowerCase())
  const maxLength = Math.floor(options.maxLength ?? 128)
  const responseHeader = options.responseHeader === undefined ? "x-correlation-id" : options.responseHeader
  return {
    read: (request) => {
      for (const name of headers) {
        const value = request.headers[name]
        if (value !== undefined && value.length <= maxLength && safe.test(value)) return value
      }
      return randomUUID()
    },
    echo: (response, id) =>
      responseHeader === false ? response : HttpServerResponse.setHeader(response, responseHeader, id)
  }
}
