/**
 * Keyed mode's engine: one live stream per key, addressed by key or by the
 * opaque token the gateway gave the connection.
 *
 * It is sluice's `Registry` (replacement, identity-checked cleanup, bounded
 * outboxes for keys nobody listens to, terminal sends) plus a table of
 * tokens. A token names one connection: once that connection has ended or
 * been replaced, the token is unknown, which is how an application learns
 * that a client left (a send by token answers 404) and tells a stale
 * disconnect callback of a replaced connection from the current one.
 *
 * The service is a `Context.Service` so that another implementation (keys
 * owned across several gateway processes, on Redis) can replace the
 * in-memory one with a layer.
 *
 * @since 0.1.0
 */
import type { Connection, Registry, SseEvent } from "@sluice/core"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/keyed.ts"

/**
 * A send or close addressed to a token whose connection has ended, was
 * replaced, or never existed.
 *
 * @since 0.1.0
 * @category errors
 */
export const UnknownTokenError: typeof internal.UnknownTokenError = internal.UnknownTokenError

/**
 * @since 0.1.0
 * @category errors
 */
export type UnknownTokenError = internal.UnknownTokenError

/**
 * Where a send goes: a key (its live connection, or its outbox) or a token
 * (that connection only).
 *
 * @since 0.1.0
 * @category models
 */
export type Target = { readonly _tag: "Key"; readonly key: string } | { readonly _tag: "Token"; readonly token: string }

/**
 * What a close did: `closed` (a live connection got the close frames and
 * ends) or `not_connected` (no live connection for the key; its waiting
 * events were forgotten).
 *
 * @since 0.1.0
 * @category models
 */
export type CloseResult = "closed" | "not_connected"

/**
 * The keyed service's operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Starts the connection for `key` in the current scope under `token`,
   * replacing the key's live connection (see `Registry.connect`).
   */
  readonly connect: (
    key: string,
    token: string,
    options: Registry.ConnectOptions
  ) => Effect.Effect<Connection.Connection, Registry.TooManyKeysError, Scope.Scope>
  /**
   * Sends an event; `terminal` makes it the key's last (the stream closes
   * with that reason, later sends to the key fail with `KeyClosedError`).
   */
  readonly send: (
    target: Target,
    event: SseEvent.Frame,
    options?: Registry.SendOptions
  ) => Effect.Effect<Registry.SendResult, Registry.SendError | UnknownTokenError>
  /** Ends the target's live connection with the close frames for `reason`; the key stays open. */
  readonly close: (target: Target, reason: string) => Effect.Effect<CloseResult, UnknownTokenError>
  /** Whether `token` names a live, current connection. */
  readonly isCurrent: (token: string) => boolean
  readonly stats: () => Registry.Stats & { readonly tokens: number }
}

/**
 * The keyed service.
 *
 * @since 0.1.0
 * @category services
 */
export class Keyed extends Context.Service<Keyed, Service>()("@sluice/gateway/Keyed") {}

/**
 * Makes the in-memory keyed service in the current scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEvent } from "@sluice/core"
 * import { Keyed } from "@sluice/gateway"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const keyed = yield* Keyed.makeMemory({ pending: { capacity: 100 } })
 *   yield* keyed.send({ _tag: "Key", key: "task-1" }, SseEvent.make({ event: "progress", data: "{}" })) // "pending"
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (options?: Registry.Options) => Effect.Effect<Service, never, Scope.Scope> = internal.make

/**
 * The in-memory keyed service as a layer (one process).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SseEvent } from "@sluice/core"
 * import { Keyed } from "@sluice/gateway"
 *
 * const program = Effect.gen(function*() {
 *   const keyed = yield* Keyed.Keyed
 *   return yield* keyed.send({ _tag: "Key", key: "42" }, SseEvent.make({ data: "queued" }))
 * }).pipe(Effect.provide(Keyed.layerMemory({ pending: { capacity: 64 } })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Registry.Options = {}): Layer.Layer<Keyed> =>
  Layer.effect(Keyed, makeMemory(options))
