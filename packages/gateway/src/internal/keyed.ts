/**
 * The in-memory keyed service: a `Registry` and a table of tokens, checked
 * in the same synchronous step as the operation they address.
 *
 * @internal
 */
import { type Connection, Registry } from "@sluice/core"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Keyed from "../Keyed.ts"

/** @internal */
export class UnknownTokenError extends Data.TaggedError("UnknownTokenError")<{ readonly token: string }> {
  override get message(): string {
    return `no live connection has the token ${JSON.stringify(this.token)} (it ended or was replaced)`
  }
}

interface Entry {
  readonly key: string
  readonly connection: Connection.Connection
}

/** @internal */
export const make = (options: Registry.Options = {}): Effect.Effect<Keyed.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const registry = yield* Registry.make(options)
    const tokens = new Map<string, Entry>()
    // The token of each key's newest connection: the registry replaces a
    // key's connection in the same step as the newer one starts, so the
    // newest token is the one whose connection the registry holds.
    const current = new Map<string, string>()

    const isCurrent = (token: string): boolean => {
      const entry = tokens.get(token)
      return entry !== undefined && current.get(entry.key) === token && entry.connection.accepting()
    }

    // The key of a live token, or the refusal. Checked in the same
    // synchronous step as the operation that follows.
    const resolve = (target: Keyed.Target): string | UnknownTokenError =>
      target._tag === "Key"
        ? target.key
        : isCurrent(target.token)
        ? tokens.get(target.token)!.key
        : new UnknownTokenError({ token: target.token })

    const service: Keyed.Service = {
      connect: (key, token, { onEnd, ...connectOptions }) =>
        Effect.gen(function*() {
          const connection = yield* Registry.connect(registry, key, connectOptions).pipe(
            // No `exists` lookup is configured: every key exists; an in-memory
            // registry is always reachable.
            Effect.catchTag(["UnknownKeyError", "RegistryUnavailableError"], (e) => Effect.die(e))
          )
          tokens.set(token, { key, connection })
          current.set(key, token)
          // Runs at once if the connection has already ended.
          connection.addObserver((outcome) => {
            tokens.delete(token)
            if (current.get(key) === token) current.delete(key)
            // The token is unknown now: the application may be told.
            try {
              onEnd?.(outcome)
            } catch {
              // A callback that throws costs only itself.
            }
          })
          return connection
        }),
      send: (target, event, sendOptions) =>
        Effect.suspend((): Effect.Effect<Registry.SendResult, Registry.SendError | UnknownTokenError> => {
          const key = resolve(target)
          return typeof key === "string" ? Registry.send(registry, key, event, sendOptions) : Effect.fail(key)
        }),
      close: (target, reason) =>
        Effect.suspend(() => {
          const key = resolve(target)
          if (typeof key !== "string") return Effect.fail(key)
          return Effect.map(
            // An in-memory registry is always reachable.
            Effect.orDie(Registry.disconnect(registry, key, reason)),
            (closed): Keyed.CloseResult => (closed ? "closed" : "not_connected")
          )
        }),
      isCurrent,
      stats: () => ({ ...registry.stats(), tokens: tokens.size })
    }
    return service
  })
