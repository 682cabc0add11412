/**
 * Request bodies of the gateway's routes: read as UTF-8 text within a byte
 * limit (a declared length over it is refused before reading; a chunked body
 * is cut at the limit), parsed as JSON, and the request's media type.
 *
 * @internal
 */
import * as ByteSize from "effect/ByteSize"
import * as Effect from "effect/Effect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import { type Refusal, refusal } from "./problem.ts"

const decoder = new TextDecoder("utf-8", { fatal: true })

const tooLarge = (max: number) => refusal("too_large", 413, `the request body is larger than ${max} bytes`)

// The platform reports an overflow through the request's parse error.
const isOverflow = (error: unknown): boolean => {
  const cause = (error as { cause?: unknown })?.cause
  return typeof cause === "object" && cause !== null && "maxBytes" in cause
}

/**
 * Reads the request body as UTF-8 text, with the limit applied while reading:
 * a declared length over the limit is refused before a byte is read, and a
 * body without one (chunked) is cut at the limit, never buffered whole.
 *
 * @internal
 */
export const readText = (maxBytes: number): Effect.Effect<string | Refusal, never, HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest
    const declared = request.headers["content-length"]
    if (declared !== undefined && Number(declared) > maxBytes) return tooLarge(maxBytes)
    const read = yield* Effect.result(
      request.arrayBuffer.pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBytes)))
    )
    if (read._tag === "Failure") {
      return isOverflow(read.failure)
        ? tooLarge(maxBytes)
        : refusal("unreadable", 400, "the request body could not be read")
    }
    if (read.success.byteLength > maxBytes) return tooLarge(maxBytes)
    try {
      return decoder.decode(read.success)
    } catch {
      return refusal("malformed", 400, "the request body is not valid UTF-8")
    }
  })

/** Parses JSON, or the refusal naming the error. @internal */
export const parseJson = (text: string): unknown | Refusal => {
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    return refusal("malformed_json", 400, `malformed JSON: ${(error as Error).message}`)
  }
}

/** The media type of the request, lower-case, without parameters. @internal */
export const mediaType = (request: HttpServerRequest): string =>
  (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
