/**
 * Topic mode's engine: publish events to topics, subscribe one connection to
 * several topics, resume all of them with one `Last-Event-ID`.
 *
 * ```text
 * publish(topics, event) ──validate, id, encode once──▶ log (one order for every topic)
 *        │
 *        └──▶ groups (subscribers of one set of topics) ──one burst per group per hand-out──┐
 *                                     shared, not copied, by each subscriber's [mailbox] ◀──┘ ─▶ writer ─▶ client
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
 * heartbeats), and fans out as a hub does: the subscribers of the same
 * topics share one encoded burst per hand-out (`Connection.makeBurst`), and
 * hand-outs are coalesced across requests ({@link Options.coalesce}).
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
 * - **Coalesced writes**: what is published in one turn of the event loop
 *   goes to each subscriber in one offer (one write); what is published
 *   within the `coalesce` window (2 ms) of the last hand-out's end waits for
 *   the window's end, joined by whatever comes meanwhile: an event waits at
 *   most the window more, and a busy feed pays one write per subscriber per
 *   window instead of one per request.
 *
 * Two implementations: in memory ({@link makeMemory}, one process), and
 * over a shared `Log` ({@link makeLog}, {@link layerStore}: on Redis, one
 * stream for every topic, appended to by every gateway process). A shared
 * feed numbers events in the log, so ids are the same on every process and
 * an id handed out by one resumes on any other: each process mirrors the
 * record from the log's tail (in order, holes read from the record) and
 * replays from its mirror; an id it has not seen yet is waited for (bounded)
 * until the mirror has caught up with the record.
 *
 * @since 0.1.0
 */
import type { Connection, Hub, SseEvent } from "@sluice/core"
import { Log } from "@sluice/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/feed/memory.ts"
import * as shared from "./internal/feed/shared.ts"

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
 * Why a publish was refused (nothing was published), or, over a shared log,
 * did not complete (`Log.LogError`: the log did not answer; an append that
 * timed out may still be recorded).
 *
 * @since 0.1.0
 * @category errors
 */
export type PublishError = Hub.PayloadTooLargeError | SseEvent.InvalidEventError | Log.LogError

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
  /**
   * The coalescing window: events published within it of the end of the
   * last hand-out to subscribers wait for its end and go out together (one
   * write per subscriber), as `Hub.Options.coalesce`. Measured on the
   * Effect `Clock` (a frozen test clock never holds an event). Default
   * 2 ms; `false` hands out at the end of every turn of the event loop.
   */
  readonly coalesce?: Duration.Input | false | undefined
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

/**
 * Settings of a feed over a shared log: the in-memory feed's (the history
 * bounds are the log's and the mirror's), without the epoch (the log's).
 *
 * @since 0.2.0
 * @category models
 */
export interface LogOptions extends Omit<Options, "epoch"> {
  /**
   * Longest wait, in a subscribe, for this process to receive what the log
   * held when the subscriber came (its `Last-Event-ID` was given out by
   * another process a moment ago). Default 2 seconds.
   */
  readonly sync?: number | undefined
}

/**
 * Makes a feed over `log` in the current scope: it loads the record's
 * newest entries (within the history bounds) and follows the log's tail.
 * Fails with `Log.LogError` when the log cannot be read at start.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Log } from "@sluice/core"
 * import { Feed } from "@sluice/gateway"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const log = yield* Log.makeMemory({ name: "feed", maxEvents: 1000 })
 *   const feed = yield* Feed.makeLog(log, { history: { maxEvents: 1000 } })
 *   yield* feed.publish([{ topics: ["news"], data: "hi" }])
 * }))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeLog = (log: Log.Log, options: LogOptions = {}): Effect.Effect<Service, Log.LogError, Scope.Scope> =>
  shared.make(log, { ...options, syncMillis: options.sync })

/**
 * A feed over the log `name` (default `"gateway-feed"`) of the `Log.Store`
 * in context: with `RedisLog.layer` from `@sluice/redis`, every gateway
 * process on the same Redis shares it.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStore = (
  options: LogOptions & { readonly name?: string | undefined } = {}
): Layer.Layer<Feed, Log.LogError, Log.Store> =>
  Layer.effect(
    Feed,
    Effect.gen(function*() {
      const store = yield* Log.Store
      const { name, ...rest } = options
      const log = yield* store.open(name ?? "gateway-feed", {
        maxEvents: options.history?.maxEvents ?? 10_000,
        maxBytes: options.history?.maxBytes ?? 16 * 1024 * 1024,
        maxAge: options.history?.maxAgeMillis ?? 3_600_000
      })
      return yield* makeLog(log, rest)
    })
  )
