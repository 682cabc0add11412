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
  readonly send: (
    key: string,
    frame: string,
    terminal: string | undefined
  ) => Effect.Effect<scripts.SendReply, Registry.RegistryUnavailableError>
  readonly claim: (key: string) => Effect.Effect<scripts.ClaimReply, Registry.RegistryUnavailableError>
  readonly disconnect: (key: string, reason: string) => Effect.Effect<number, Registry.RegistryUnavailableError>
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
  readonly renew: (key: string, generation: number) => Effect.Effect<readonly [string, number, number], unknown>
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
  const evalSend = redis.eval(scripts.send)
  const evalClaim = redis.eval(scripts.claim)
  const evalPull = redis.eval(scripts.pull)
  const evalAck = redis.eval(scripts.ack)
  const evalRenew = redis.eval(scripts.renew)
  const evalDisconnect = redis.eval(scripts.disconnect)
  return {
    send: (key, frame, terminal) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => guarded(key, "send", evalSend(keysOf(key), prefix, key, frame, terminal, now, limits))
      ),
    claim: (key) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => guarded(key, "connect", evalClaim(keysOf(key), prefix, key, settings.node, now, limits))
      ),
    disconnect: (key, reason) => guarded(key, "disconnect", evalDisconnect(keysOf(key), prefix, key, reason)),
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
    renew: (key, generation) => bounded(evalRenew(keysOf(key), settings.node, generation, limits.keepMillis))
  }
}
