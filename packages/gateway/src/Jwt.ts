/**
 * JWT authorization of topic mode, verified with `jose` (HS256 with a shared
 * secret, RS256 with a public key; no other algorithm is accepted, `none`
 * least of all).
 *
 * Claims read (top level):
 * - `publish`: the topics the bearer may publish to;
 * - `subscribe`: the topics the bearer may receive;
 * - `exp` (optional): when the token expires; a subscriber's stream ends
 *   then, with `connection_close` and reason `token_expired`.
 *
 * Each entry of `publish` / `subscribe` is an exact topic name or a simple
 * pattern where `*` stands for any run of characters (`chat/*` for every
 * topic under `chat/`, `*` for every topic).
 *
 * The token comes from `Authorization: Bearer <jwt>` or, for browsers whose
 * `EventSource` cannot set headers, from a cookie; never from the URL (see
 * `SseAuth` in `@sluice/http` for why).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as jose from "jose"

/**
 * Why a token was refused: `missing` (no token), `malformed`, `expired`,
 * `invalid` (bad signature, wrong algorithm or key, claims that do not
 * validate).
 *
 * @since 0.1.0
 * @category errors
 */
export class JwtError extends Data.TaggedError("JwtError")<{
  readonly reason: "missing" | "malformed" | "expired" | "invalid"
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason === "missing" ? "no token" : `${this.reason} token`}: ${this.detail}`
  }
}

/**
 * What a verified token allows.
 *
 * @since 0.1.0
 * @category models
 */
export interface Claims {
  readonly publish: ReadonlyArray<string>
  readonly subscribe: ReadonlyArray<string>
  /** Expiry in milliseconds since the epoch, if the token has one. */
  readonly expiresAt: number | undefined
}

/**
 * Keys and claim checks.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** HS256 key (at least 32 bytes). */
  readonly secret?: string | undefined
  /** RS256 public key, PEM (SPKI). */
  readonly publicKey?: string | undefined
  readonly audience?: string | undefined
  readonly issuer?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Verifier {
  readonly verify: (token: string) => Effect.Effect<Claims, JwtError>
}

const stringList = (value: unknown): ReadonlyArray<string> =>
  Array.isArray(value)
    ? value.filter((v): v is string => typeof v === "string")
    : typeof value === "string"
    ? [value]
    : []

/**
 * Makes a verifier; `undefined` when no key is configured. A public key that
 * is not valid PEM dies naming the option.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Jwt } from "@sluice/gateway"
 *
 * const program = Effect.gen(function*() {
 *   const verifier = yield* Jwt.make({ secret: "a shared secret of at least 32 bytes!" })
 *   const claims = yield* verifier!.verify("eyJ...")
 *   Jwt.allows(claims.subscribe, "chat/lobby")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Verifier | undefined> =>
  Effect.gen(function*() {
    if (options.secret === undefined && options.publicKey === undefined) return undefined
    const hmac = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret)
    const rsa = options.publicKey === undefined
      ? undefined
      : yield* Effect.tryPromise({
        try: () => jose.importSPKI(options.publicKey!, "RS256"),
        catch: (e) => new Error(`GATEWAY_JWT_PUBLIC_KEY is not a valid RS256 public key (PEM): ${String(e)}`)
      }).pipe(Effect.orDie)
    const algorithms = [...(hmac ? ["HS256"] : []), ...(rsa ? ["RS256"] : [])]
    const verify = (token: string): Effect.Effect<Claims, JwtError> =>
      Effect.tryPromise({
        try: () =>
          jose.jwtVerify(
            token,
            async (header) => (header.alg === "RS256" && rsa !== undefined ? rsa : hmac ?? rsa!),
            {
              algorithms,
              ...(options.audience === undefined ? {} : { audience: options.audience }),
              ...(options.issuer === undefined ? {} : { issuer: options.issuer })
            }
          ),
        catch: (e) => refusal(e)
      }).pipe(
        Effect.map(({ payload }): Claims => ({
          publish: stringList(payload["publish"]),
          subscribe: stringList(payload["subscribe"]),
          expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined
        }))
      )
    return { verify }
  })

const refusal = (e: unknown): JwtError => {
  if (e instanceof jose.errors.JWTExpired) return new JwtError({ reason: "expired", detail: "the token has expired" })
  if (e instanceof jose.errors.JWSInvalid || e instanceof jose.errors.JWTInvalid) {
    return new JwtError({ reason: "malformed", detail: "the token is not a well-formed JWT" })
  }
  if (e instanceof jose.errors.JWSSignatureVerificationFailed) {
    return new JwtError({ reason: "invalid", detail: "the signature does not verify" })
  }
  if (e instanceof jose.errors.JOSEAlgNotAllowed) {
    return new JwtError({ reason: "invalid", detail: "the token's algorithm is not accepted" })
  }
  if (e instanceof jose.errors.JWTClaimValidationFailed) {
    return new JwtError({ reason: "invalid", detail: `the ${e.claim} claim does not validate` })
  }
  return new JwtError({ reason: "invalid", detail: "the token does not verify" })
}

/**
 * Whether one of `patterns` covers `topic` (exact name, or `*` for any run
 * of characters).
 *
 * @example
 * ```ts
 * import { Jwt } from "@sluice/gateway"
 *
 * Jwt.allows(["news", "rooms/*"], "rooms/42") // true
 * Jwt.allows(["news"], "sports") // false
 * ```
 *
 * @since 0.1.0
 * @category authorization
 */
export const allows = (patterns: ReadonlyArray<string>, topic: string): boolean =>
  patterns.some((p) => (p.includes("*") ? globMatch(p, topic) : p === topic))

const globMatch = (pattern: string, topic: string): boolean => {
  const parts = pattern.split("*")
  if (!topic.startsWith(parts[0]!)) return false
  let at = parts[0]!.length
  for (let i = 1; i < parts.length - 1; i++) {
    const found = topic.indexOf(parts[i]!, at)
    if (found === -1) return false
    at = found + parts[i]!.length
  }
  const last = parts[parts.length - 1]!
  return topic.length - at >= last.length && topic.endsWith(last)
}

/**
 * The token of a request: the `Authorization` bearer, else the cookie.
 * `undefined` when there is none; a malformed `Authorization` header is a
 * {@link JwtError}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerRequest } from "effect/http"
 * import { Jwt } from "@sluice/gateway"
 *
 * const token = Effect.map(HttpServerRequest.HttpServerRequest, (request) => Jwt.fromRequest(request, "gateway_token"))
 * ```
 *
 * @since 0.1.0
 * @category authorization
 */
export const fromRequest = (request: HttpServerRequest, cookie: string): string | undefined | JwtError => {
  const header = request.headers["authorization"]
  if (header !== undefined) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    return match === null
      ? new JwtError({ reason: "malformed", detail: "the Authorization header is not a Bearer token" })
      : match[1]!
  }
  const value = request.cookies[cookie]
  return value === undefined || value === "" ? undefined : value
}
