/**
 * Authorization for SSE routes: decide who may open a stream *before* any
 * event is sent.
 *
 * An authorizer is `request → Effect<Principal, UnauthorizedError | ForbiddenError>`.
 * `SseResponse` runs it first; `UnauthorizedError` becomes `401` (with a
 * `WWW-Authenticate` challenge) and `ForbiddenError` becomes `403`, both with a
 * problem-details body, and no stream is opened, so no event of the route can
 * reach a refused client.
 *
 * Where the token comes from matters. The browser's `EventSource` cannot set
 * headers, which tempts people to put tokens in the URL (`/events?token=…`).
 * Don't: URLs end up in server and proxy access logs, browser history, and
 * `Referer` headers, and they are cached and shared. Use an `Authorization`
 * header from non-browser clients, and a cookie (`HttpOnly; Secure;
 * SameSite`) with `new EventSource(url, { withCredentials: true })` (or a
 * same-origin request) from browsers. {@link bearer} accepts both.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"

/**
 * No valid credentials: answered `401` (was `Unauthorized`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseAuth } from "@sluice/http"
 *
 * const authorize = SseAuth.bearer((token) =>
 *   token === "s3cret"
 *     ? Effect.succeed({ user: "ada" })
 *     : Effect.fail(new SseAuth.UnauthorizedError({ detail: "unknown token", challenge: "Bearer realm=\"feed\"" })))
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class UnauthorizedError extends Data.TaggedError("UnauthorizedError")<{
  readonly detail: string
  /** The `WWW-Authenticate` challenge. Default `Bearer`. */
  readonly challenge?: string | undefined
}> {
  override get message(): string {
    return `unauthorized: ${this.detail}`
  }
}

/**
 * Valid credentials, but not allowed here: answered `403` (was `Forbidden`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseAuth } from "@sluice/http"
 *
 * const adminsOnly = SseAuth.bearer((token) =>
 *   token === "admin-token"
 *     ? Effect.succeed({ role: "admin" })
 *     : Effect.fail(new SseAuth.ForbiddenError({ detail: "this stream needs the admin role" })))
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class ForbiddenError extends Data.TaggedError("ForbiddenError")<{ readonly detail: string }> {
  override get message(): string {
    return `forbidden: ${this.detail}`
  }
}

/**
 * Decides whether `request` may open the stream, and as whom.
 *
 * @since 0.1.0
 * @category models
 */
export type Authorize<P, R = never> = (
  request: HttpServerRequest
) => Effect.Effect<P, UnauthorizedError | ForbiddenError, R>

/**
 * An authorizer for bearer tokens, read from `Authorization: Bearer <token>`
 * or, for browsers, from the cookie named `cookie` (if given). The token is
 * checked by `verify`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseAuth } from "@sluice/http"
 *
 * const authorize = SseAuth.bearer((token) =>
 *   token === "s3cret" ? Effect.succeed({ user: "ada" }) : Effect.fail(new SseAuth.UnauthorizedError({ detail: "bad token" })),
 *   { cookie: "session" }
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const bearer = <P, R>(
  verify: (token: string) => Effect.Effect<P, UnauthorizedError | ForbiddenError, R>,
  options: { readonly cookie?: string | undefined } = {}
): Authorize<P, R> =>
(request) =>
  Effect.suspend(() => {
    const header = request.headers["authorization"]
    if (header !== undefined) {
      const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
      if (match === null) {
        return Effect.fail(new UnauthorizedError({ detail: "the Authorization header is not a Bearer token" }))
      }
      return verify(match[1]!)
    }
    const fromCookie = options.cookie === undefined ? undefined : request.cookies[options.cookie]
    if (fromCookie !== undefined && fromCookie !== "") return verify(fromCookie)
    return Effect.fail(new UnauthorizedError({ detail: "no credentials" }))
  })
