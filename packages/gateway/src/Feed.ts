/**
 * Topic mode's engine: publish events to topics, subscribe one connection to
 * several topics, resume all of them with one `Last-Event-ID`.
 *
 * ```text
 * publish(topics, event) ──validate, id, encode once──▶ log (one order for every topic)
 *        │
 *        └──▶ subscribers of each topic ──burst, one offer per subscriber──▶ [mailbox] ─▶ writer ─▶ client
 * ```
 *
 * Why not a `Hub` per topic: a hub gives one order per topic, and its ids
 * name a position in that topic only. A connection that carries several
 * topics would then need one id per topic, and `EventSource` sends back only
 * the last one it saw. The feed keeps a single record for all topics, so an
 * id (`<epoch>-<seq>`) names a position in every topic at once; each
 * subscriber receives its topics' events in that one order, and resumes
 * after its last id on all of them. Per subscriber it reuses sluice's
 * connection actor as a hub does (bounded mailbox, slow-client strategy,
 * heartbeats, coalesced writes).
 *
 * What it guarantees:
 * - **One order**: every subscriber sees its events in the feed's order; an
 *   event published to several topics reaches a subscriber of two of them
 *   once.
 * - **All or nothing**: a publish of several events validates them all
 *   first; one invalid event refuses the batch and touches nothing.
 * - **Exact resume**: the subscriber is registered and its replay fixed in
 *   one synchronous step; an id older than the record, from another epoch
 *   (a restart) or unknown gets a `replay_gap` event, then what is retained.
 *
 * The service is a `Context.Service` so that another implementation (a
 * Redis-backed record shared by several gateway processes) can replace the
 * in-memory one with a layer.
 *
 * @since 0.1.0
 */
import type { Connection, Hub, SseEvent } from "@sluice/core"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/feed/memory.ts"

/**
 * What a subscriber does when its mailbox is full (the `strategy` words of
 * `Hub.Strategy`): `disconnect` (it ends; the client resumes with its
 * `Last-Event-ID`), `sliding` or `dropping` (the oldest or the new event is
 * dropped, and counted).
 *
 * @since 0.2.0
 * @category models
 */
export type Strategy = "disconnect" | "sliding" | "dropping"

/**
 * One event to publish, to one or more topics.
 *
 * @since 0.1.0
 * @category models
 */
export interface PublishInput {
  readonly topics: ReadonlyArray<string>
  readonly data: string
  readonly event?: string | undefined
  /** The publisher's id; default: the feed's `<epoch>-<seq>`. */
  readonly id?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Published {
  readonly id: string
  readonly seq: number
}

/**
 * Options of {@link Service.subscribe}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions
  extends Omit<Connection.Options, "producer" | "strategy" | "dropNotice" | "preamble">
{
  readonly topics: ReadonlyArray<string>
  readonly lastEventId?: string | undefined
  /** What to do when the mailbox is full. Default `disconnect`. */
  readonly strategy?: Strategy | undefined
  /** Frames written first (`retry:`, `connection_open`). */
  readonly preamble?: ReadonlyArray<SseEvent.Frame> | undefined
}

/**
 * A subscription: its connection and what replay found.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription {
  readonly connection: Connection.Connection
  readonly replay: Hub.Replay
}

/**
 * Why a publish was refused (nothing was published).
 *
 * @since 0.1.0
 * @category errors
 */
export type PublishError = Hub.PayloadTooLargeError | SseEvent.InvalidEventError

/**
 * Counters of a feed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly subscribers: number
  /** Topics with at least one subscriber. */
  readonly topics: number
  readonly published: number
  readonly history: { readonly events: number; readonly bytes: number }
  readonly lastEventId: string | undefined
}

/**
 * The feed's operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Publishes events in order, all or none. */
  readonly publish: (events: ReadonlyArray<PublishInput>) => Effect.Effect<ReadonlyArray<Published>, PublishError>
  /** Subscribes in the current scope; closing the scope ends the subscription. */
  readonly subscribe: (
    options: SubscribeOptions
  ) => Effect.Effect<Subscription, SseEvent.InvalidEventError, Scope.Scope>
  readonly stats: () => Stats
}

/**
 * The feed service.
 *
 * @since 0.1.0
 * @category services
 */
export class Feed extends Context.Service<Feed, Service>()("@sluice/gateway/Feed") {}

/**
 * In-memory feed settings. Limits that are not numbers of at least their
 * minimum are a defect of the layer, naming the option.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly history?: {
    /** Default 10 000; 0 keeps nothing (no resume). */
    readonly maxEvents?: number | undefined
    /** Default 16 MiB. */
    readonly maxBytes?: number | undefined
    /** Default 1 hour. */
    readonly maxAgeMillis?: number | undefined
  } | undefined
  /** Largest encoded event. Default 64 KiB. */
  readonly maxEventBytes?: number | undefined
  /** Names this record in its ids (lower-case letters and digits). Default: random. */
  readonly epoch?: string | undefined
}

/**
 * Makes an in-memory feed in the current scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Feed } from "@sluice/gateway"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const feed = yield* Feed.makeMemory({ history: { maxEvents: 1000 } })
 *   yield* feed.publish([{ topics: ["chat/lobby"], event: "message", data: "hi" }])
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (options?: Options) => Effect.Effect<Service, never, Scope.Scope> = internal.make

/**
 * The in-memory feed as a layer (one process).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Feed } from "@sluice/gateway"
 *
 * const program = Effect.gen(function*() {
 *   const feed = yield* Feed.Feed
 *   return yield* feed.publish([{ topics: ["news"], data: "hello" }])
 * }).pipe(Effect.provide(Feed.layerMemory({ history: { maxEvents: 1_000 } })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<Feed> => Layer.effect(Feed, makeMemory(options))
