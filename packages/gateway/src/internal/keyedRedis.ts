/**
 * The keyed service on Redis: `RedisRegistry` with tokens. Keys go to the
 * registry as they are; tokens go to the registry's token operations, which
 * resolve them on any process and refuse them once their connection is not
 * the key's live one.
 *
 * @internal
 */
import { Registry } from "@sluice/core"
import { RedisRegistry } from "@sluice/redis"
import type { RedisConnection } from "@sluice/redis"
import * as Effect from "effect/Effect"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import type * as Keyed from "../Keyed.ts"
import { UnknownTokenError } from "./keyed.ts"

/** The gateway's refusal for a token the registry does not know. */
const unknownToken = (token: string) => Effect.fail(new UnknownTokenError({ token }))

// The gateway's tokens are 24 characters: a longer one names nothing, and is not looked up in Redis.
const maxTokenLength = 256

/** @internal */
export const make = (
  options: RedisRegistry.Options = {}
): Effect.Effect<Keyed.Service, RedisConnection.RedisUnavailableError, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const tokens = yield* RedisRegistry.makeWithTokens(options)
    const registry = tokens.registry
    return {
      connect: (key, token, { onEnd, ...connectOptions }) =>
        tokens.connect(key, token, { ...connectOptions, onReleased: onEnd }).pipe(
          // No `exists` lookup is configured: every key exists.
          Effect.catchTag("UnknownKeyError", (e) => Effect.die(e))
        ),
      send: (target, event, sendOptions) =>
        target._tag === "Key"
          ? Registry.send(registry, target.key, event, sendOptions)
          : target.token.length > maxTokenLength
          ? unknownToken(target.token)
          : tokens.send(target.token, event, sendOptions).pipe(
            Effect.catchTag("UnknownTokenError", () => unknownToken(target.token))
          ),
      close: (target, reason) =>
        Effect.map(
          target._tag === "Key"
            ? Registry.disconnect(registry, target.key, reason)
            : target.token.length > maxTokenLength
            ? unknownToken(target.token)
            : tokens.disconnect(target.token, reason).pipe(
              Effect.catchTag("UnknownTokenError", () => unknownToken(target.token))
            ),
          (closed): Keyed.CloseResult => (closed ? "closed" : "not_connected")
        ),
      isCurrent: (token) => tokens.localKey(token) !== undefined,
      stats: () => {
        const stats = registry.stats()
        return { ...stats, tokens: stats.live }
      }
    }
  })
