/**
 * The keyed registry's calls to Redis. Those a caller waits for (send,
 * connect, disconnect) fail with `RegistryUnavailableError` naming the
 * address; the background ones (pull, acknowledge, renew) are bounded by the
 * same timeout and retried by their callers.
 *
 * @internal
 */
import { Registry } from "@sluice/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Redis from "effect/persistence/Redis"
import { describeCause } from "./errors.ts"
import * as keys from "./keys.ts"
import * as scripts from "./registryScripts.ts"

/** What the calls need to know. @internal */
export interface Settings {
  /** Prefix of this registry's keys and channels. */
  readonly prefix: string
  readonly address: string
  readonly node: string
  readonly timeoutMillis: number
  readonly limits: scripts.Limits
}

/** @internal */
export interface KeyedClient {
  /** With `token`: only to the connection it names (`gone` otherwise). */
  readonly send: (
    key: string,
    frame: string,
    terminal: string | undefined,
    token?: string | undefined
  ) => Effect.Effect<scripts.SendReply, Registry.RegistryUnavailableError>
  readonly claim: (
    key: string,
    token: string | undefined
  ) => Effect.Effect<scripts.ClaimReply, Registry.RegistryUnavailableError>
  /** With `token`: only the connection it names (`-1` otherwise). */
  readonly disconnect: (
    key: string,
    reason: string,
    token?: string | undefined
  ) => Effect.Effect<number, Registry.RegistryUnavailableError>
  /** Records which key `token` names (before the claim that gives the token to a connection). */
  readonly index: (key: string, token: string) => Effect.Effect<void, Registry.RegistryUnavailableError>
  /** The key `token` names, if Redis still knows it. */
  readonly resolve: (
    token: string,
    operation: "send" | "disconnect"
  ) => Effect.Effect<string | undefined, Registry.RegistryUnavailableError>
  /** Extends the life of `token`'s entry (with its registration's renewal). */
  readonly refresh: (token: string) => Effect.Effect<number, unknown>
  /** Forgets `token`'s entry (its connection ended). */
  readonly forget: (token: string) => Effect.Effect<number, unknown>
  /** Whether Redis holds anything for `key`. */
  readonly known: (key: string) => Effect.Effect<boolean, Registry.RegistryUnavailableError>
  readonly pull: (
    key: string,
    generation: number,
    after: number
  ) => Effect.Effect<{ readonly stale: boolean; readonly entries: ReadonlyArray<scripts.Waiting> }, unknown>
  readonly ack: (
    key: string,
    generation: number,
    seq: number,
    mode: "ack" | "release" | "handover"
  ) => Effect.Effect<number, unknown>
  readonly renew: (
    key: string,
    generation: number,
    token: string | undefined
  ) => Effect.Effect<readonly [string, number, number], unknown>
}

/** @internal */
export const make = (redis: Redis.Redis["Service"], settings: Settings): KeyedClient => {
  const { limits, prefix } = settings
  const keysOf = (key: string) => keys.keyed(prefix, key)
  const guarded = <A>(key: string, operation: "send" | "connect" | "disconnect", effect: Effect.Effect<A, unknown>) =>
    effect.pipe(
      Effect.mapError((cause) =>
        new Registry.RegistryUnavailableError({
          key,
          operation,
          reason: `Redis at ${settings.address} is unavailable: ${describeCause(cause)}`,
          cause
        })
      ),
      Effect.timeoutOrElse({
        duration: settings.timeoutMillis,
        orElse: () =>
          Effect.fail(
            new Registry.RegistryUnavailableError({
              key,
              operation,
              reason: `Redis at ${settings.address} did not answer within ${settings.timeoutMillis} ms` +
                (operation === "send" ? " (the event may still have been sent)" : "")
            })
          )
      })
    )
  const bounded = <A>(effect: Effect.Effect<A, unknown>) =>
    Effect.timeoutOrElse(effect, { duration: settings.timeoutMillis, orElse: () => Effect.fail("timeout") })
  // A token's entry lives as long as its key's state can.
  const keepOf = () => Math.max(1, limits.keepMillis)
  const evalSend = redis.eval(scripts.send)
  const evalClaim = redis.eval(scripts.claim)
  const evalPull = redis.eval(scripts.pull)
  const evalAck = redis.eval(scripts.ack)
  const evalRenew = redis.eval(scripts.renew)
  const evalDisconnect = redis.eval(scripts.disconnect)
  return {
    send: (key, frame, terminal, token) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => guarded(key, "send", evalSend(keysOf(key), prefix, key, frame, terminal, now, limits, token))
      ),
    claim: (key, token) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => guarded(key, "connect", evalClaim(keysOf(key), prefix, key, settings.node, now, limits, token))
      ),
    disconnect: (key, reason, token) =>
      guarded(key, "disconnect", evalDisconnect(keysOf(key), prefix, key, reason, token)),
    index: (key, token) =>
      Effect.asVoid(guarded(key, "connect", redis.send("SET", keys.token(prefix, token), key, "PX", String(keepOf())))),
    resolve: (token, operation) =>
      Effect.map(
        guarded(
          `(token ${token.slice(0, 12)}…)`,
          operation,
          redis.send<string | null>("GET", keys.token(prefix, token))
        ),
        (key) => typeof key === "string" ? key : undefined
      ),
    refresh: (token) => bounded(redis.send<number>("PEXPIRE", keys.token(prefix, token), String(keepOf()))),
    forget: (token) => bounded(redis.send<number>("DEL", keys.token(prefix, token))),
    known: (key) => Effect.map(guarded(key, "connect", redis.send<number>("EXISTS", keysOf(key).state)), (n) => n > 0),
    pull: (key, generation, after) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          bounded(evalPull(keysOf(key), generation, after, now, limits)).pipe(
            Effect.map((reply) => ({
              stale: reply[0] === "stale",
              entries: reply.slice(2).map((m) => scripts.parseMember(String(m)))
            }))
          )
      ),
    ack: (key, generation, seq, mode) =>
      bounded(evalAck(keysOf(key), prefix, key, generation, seq, mode, limits.keepMillis)),
    renew: (key, generation, token) => bounded(evalRenew(keysOf(key), settings.node, generation, limits, token))
  }
}
