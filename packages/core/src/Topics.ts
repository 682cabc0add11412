/**
 * Topics: hubs by name, created on first use and released when nobody needs
 * them.
 *
 * A topic's hub is created by the first publish or subscribe that names it,
 * with that topic's configuration. It is released (its history dropped, its
 * name freed) once it has no subscriber, no publish under way and no history
 * left to keep: at once when it keeps no history, otherwise when its newest
 * retained event expires (`history.maxAge`, on the Effect `Clock`). A topic
 * recreated later gets a new epoch, so a client resuming with an id from the
 * released one is told about the gap.
 *
 * The number of live topics is capped: naming a new topic beyond the cap
 * fails with {@link TopicLimitError} (so clients choosing topic names cannot
 * grow memory without a limit).
 *
 * **Where topics are recorded**: with a `Log.Store` in the context of
 * {@link make} (a Redis one, to share topics between processes), each
 * topic's hub is over `store.open(topic)`, opened on first use in the topic's
 * own scope and closed when the topic is released (the record itself stays
 * in the store, so a recreated topic resumes where it was). Without a store,
 * each topic gets an in-memory log, as `Hub.make` does; a recreated topic
 * then starts a new epoch. A topic's `history` options become its log's
 * bounds; `hub.log` is refused (topics open their own), and so is `hub.epoch`
 * with a store. A log that cannot be opened fails the publish or subscribe
 * that needed it with `Log.LogError`, and the topic is not kept.
 *
 * `RcMap` is close but not the right tool here: it releases on reference
 * count only, while a topic must also live while it has history to replay.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Scope from "effect/Scope"
import type * as Hub from "./Hub.ts"
import * as internal from "./internal/topics.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: typeof internal.TypeId = internal.TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface Topics {
  readonly [TypeId]: typeof TypeId
  /** Live topics. */
  readonly size: () => number
  /** Whether a topic is live (without creating it). */
  readonly has: (topic: string) => boolean
  /** A live topic's hub statistics (without creating it). */
  readonly stats: (topic: string) => Hub.Stats | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Most topics alive at once. Default 10 000. */
  readonly maxTopics?: number | undefined
  /** Hub options for every topic, or per topic. */
  readonly hub?: Hub.Options | ((topic: string) => Hub.Options) | undefined
}

/**
 * A new topic was named while `maxTopics` topics were alive.
 *
 * @since 0.1.0
 * @category errors
 */
export const TopicLimitError: typeof internal.TopicLimitError = internal.TopicLimitError

/**
 * @since 0.1.0
 * @category errors
 */
export type TopicLimitError = internal.TopicLimitError

/**
 * Creates a topic collection in the current scope (closing it stops the
 * expiry timers of idle topics; subscribers live in their own scopes).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Topics } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const rooms = yield* Topics.make({
 *     maxTopics: 1000,
 *     hub: (room) => room.startsWith("vip/") ? { history: { maxEvents: 5000 } } : { history: { maxEvents: 100 } }
 *   })
 *   yield* Topics.publishJson(rooms, "lobby", { text: "hi" }, { event: "chat" })
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Topics, never, Scope.Scope> => internal.make(options)

/**
 * `true` for a {@link Topics} collection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Topics } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.map(Topics.make(), Topics.isTopics)) // true
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isTopics = (u: unknown): u is Topics => typeof u === "object" && u !== null && TypeId in u

/**
 * Publishes to a topic (creating it if needed). See `Hub.publish`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Topics } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const rooms = yield* Topics.make()
 *   yield* Topics.publish(rooms, "lobby", { event: "chat", data: "hi" })
 * }))
 * // data-last:
 * const greet = Effect.scoped(Effect.flatMap(Topics.make(), Topics.publish("lobby", { event: "chat", data: "hi" })))
 * ```
 *
 * @since 0.1.0
 * @category publishing
 */
export const publish: {
  (
    topic: string,
    event: Hub.EventInput
  ): (self: Topics) => Effect.Effect<Hub.Published, Hub.PublishError | TopicLimitError>
  (self: Topics, topic: string, event: Hub.EventInput): Effect.Effect<Hub.Published, Hub.PublishError | TopicLimitError>
} = dual(3, (self: Topics, topic: string, event: Hub.EventInput) => internal.publish(self, topic, event))

/**
 * Publishes JSON to a topic (creating it if needed). See `Hub.publishJson`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Topics } from "@sluice/core"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const rooms = yield* Topics.make()
 *   yield* Topics.publishJson(rooms, "lobby", { from: "ada", text: "hi" }, { event: "chat" })
 * }))
 * ```
 *
 * @since 0.1.0
 * @category publishing
 */
export const publishJson: {
  (
    topic: string,
    value: unknown,
    fields?: Hub.JsonFields
  ): (
    self: Topics
  ) => Effect.Effect<Hub.Published, Hub.PublishError | Hub.UnserializableDataError | TopicLimitError>
  (
    self: Topics,
    topic: string,
    value: unknown,
    fields?: Hub.JsonFields
  ): Effect.Effect<Hub.Published, Hub.PublishError | Hub.UnserializableDataError | TopicLimitError>
} = dual(
  (args) => isTopics(args[0]),
  (self: Topics, topic: string, value: unknown, fields?: Hub.JsonFields) =>
    internal.publishJson(self, topic, value, fields)
)

/**
 * Subscribes to a topic (creating it if needed) in the current scope. See
 * `Hub.subscribe`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Topics } from "@sluice/core"
 * import { TestSink } from "@sluice/core/testing"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const rooms = yield* Topics.make()
 *   const client = yield* TestSink.make()
 *   const sub = yield* Topics.subscribe(rooms, "lobby", { sink: client.sink, strategy: "sliding" })
 *   yield* Topics.publish(rooms, "lobby", { data: "hi" })
 *   yield* sub.connection.close("bye")
 * }))
 * ```
 *
 * @since 0.1.0
 * @category subscribing
 */
export const subscribe: {
  (
    topic: string,
    options: Hub.SubscribeOptions
  ): (self: Topics) => Effect.Effect<Hub.Subscription, Hub.SubscribeError | TopicLimitError, Scope.Scope>
  (
    self: Topics,
    topic: string,
    options: Hub.SubscribeOptions
  ): Effect.Effect<Hub.Subscription, Hub.SubscribeError | TopicLimitError, Scope.Scope>
} = dual(
  3,
  (self: Topics, topic: string, options: Hub.SubscribeOptions) => internal.subscribe(self, topic, options)
)
