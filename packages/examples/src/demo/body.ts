/**
 * JSON request bodies of the demo's API: read within a byte limit, decoded
 * with a schema that refuses unknown fields, and every kind of bad input
 * answered with a 400 problem-details body.
 */
import { ByteSize, Effect, Schema } from "effect"
import { HttpIncomingMessage, HttpServerRequest } from "effect/http"
import { problem } from "./problem.ts"

/** Largest request body the demo's JSON endpoints read. */
export const maxBodyBytes = 16 * 1024

/**
 * Reads a JSON body and decodes it with `schema`, refusing unknown fields.
 * Bad input is answered with a 400 problem-details body: malformed JSON, a
 * value the schema rejects, or a body over the limit (the demo's API promises
 * 400 for all of them).
 */
export const decodeBody = <S extends Schema.Top>(schema: S) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const length = Number(request.headers["content-length"] ?? 0)
    if (length > maxBodyBytes) return { problem: tooLarge() } as const
    // The limit applies while reading: a chunked body (no content-length)
    // is cut at the limit, never buffered whole.
    const text = yield* request.text.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
      Effect.orElseSucceed(() => undefined)
    )
    if (text === undefined) {
      return {
        problem: problem(
          400,
          "Bad Request",
          `the request body could not be read, or is larger than ${maxBodyBytes} bytes`
        )
      } as const
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (error) {
      return { problem: problem(400, "Bad Request", `malformed JSON: ${(error as Error).message}`) } as const
    }
    const decoded = yield* Effect.result(
      Schema.decodeUnknownEffect(schema, { onExcessProperty: "error", errors: "all" })(json)
    )
    if (decoded._tag === "Failure") return { problem: problem(400, "Bad Request", decoded.failure.message) } as const
    return { value: decoded.success as S["Type"] } as const
  })

const tooLarge = () => problem(400, "Bad Request", `the request body is larger than ${maxBodyBytes} bytes`)
