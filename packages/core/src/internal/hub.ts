/**
 * The hub behind the public `Hub` module: a local fan-out over a log.
 *
 * One event, from publish to socket:
 *
 * ```text
 * publish ─▶ prepare (validate, fields as text) ─▶ publish: plain | gated | remote ─▶ Log.append
 *   Log: Appended(burst) ─▶ tail (in order, holes read) ─▶ fanOut.deliver ─▶ mailbox ─▶ writer ─▶ sink
 * subscribe ─▶ replay (read after Last-Event-ID, hand-off) ─▶ fanOut.add
 * ```
 *
 * Modules, in that order: `hub/config` (options), `hub/prepare` (publish
 * validation), `hub/publish` (the paths to the log, with `hub/gate`),
 * `log/memory` (the default log), `hub/tail` (the log's changes, in order),
 * `hub/fanOut` (subscribers and their policies), `hub/replay` and
 * `hub/subscribe`; then the connection (`connection/mailbox`, `connection/writer`).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Hub from "../Hub.ts"
import type * as Log from "../Log.ts"
import type { InvalidEventError } from "../SseEvent.ts"
import { type Config, config } from "./hub/config.ts"
import { TypeId, UnserializableDataError } from "./hub/errors.ts"
import { FanOut } from "./hub/fanOut.ts"
import { Publisher } from "./hub/publish.ts"
import { subscribe as subscribeTo } from "./hub/subscribe.ts"
import { Tail } from "./hub/tail.ts"
import * as ids from "./log/ids.ts"
import * as memory from "./log/memory.ts"

export { config }

/** The hub behind the public interface. @internal */
export interface HubInternal extends Hub.Hub {
  readonly publish: (input: Hub.EventInput) => Effect.Effect<Hub.Published, Hub.PublishError>
  readonly publishUnsafe: (
    input: Hub.EventInput
  ) => Result.Result<Hub.Published, Hub.PublishError | Hub.WouldBlockError>
  readonly subscribe: (
    options: Hub.SubscribeOptions
  ) => Effect.Effect<Hub.Subscription, Hub.SubscribeError, Scope.Scope>
  readonly countRejection: (error: Hub.PublishError | UnserializableDataError) => void
  /** No subscriber, no publish or catch-up under way, and nothing retained here (for `Topics`). */
  readonly isIdle: () => boolean
  /** When the newest retained event expires (Clock millis), if the history has an age limit. */
  readonly expiresAt: () => number | undefined
  /** Called when the last subscriber leaves (for `Topics`). */
  onEmpty: (() => void) | undefined
}

/** Builds a hub over `log` synchronously (for `Topics`). @internal */
export const makeUnsafe = (
  cfg: Config,
  log: Log.Log,
  clock: Clock.Clock,
  context: Context.Context<never>
): HubInternal => {
  // The log's position and its listener in one step: every change after it.
  const fanOut = new FanOut(cfg, log.position(), clock, context)
  const tail = new Tail(log, fanOut, context, clock, cfg.coalesceNanos)
  log.listen(tail.onChange)
  const publisher = new Publisher(cfg, log, fanOut, tail, context)
  const parts = { cfg, log, fanOut, tail, clock, context }
  return {
    [TypeId]: TypeId,
    get epoch() {
      return fanOut.epoch
    },
    subscriberCount: () => fanOut.members.size,
    stats: () => {
      const retained = log.stats()
      return {
        subscribers: fanOut.members.size,
        published: publisher.published,
        history: { events: retained.events, bytes: retained.bytes },
        lastEventId: publisher.lastEventId
      }
    },
    isIdle: () => fanOut.members.size === 0 && publisher.idle() && !tail.busy() && log.stats().events === 0,
    expiresAt: () => log.stats().expiresAt,
    get onEmpty() {
      return fanOut.onEmpty
    },
    set onEmpty(f) {
      fanOut.onEmpty = f
    },
    publish: publisher.publish,
    publishUnsafe: publisher.publishUnsafe,
    subscribe: (options) => subscribeTo(parts, options),
    countRejection: publisher.countRejection
  }
}

/** An in-memory log for a hub made without one. @internal */
export const memoryLog = (
  name: string,
  cfg: Config,
  options: Hub.Options,
  clock: Clock.Clock,
  random: Random.Random
): Log.Log =>
  memory.makeUnsafe(
    name,
    options.epoch ?? ids.randomEpoch(() => random.nextDoubleUnsafe(), ids.logEpochLength),
    cfg.history,
    clock
  )

const impl = (hub: Hub.Hub): HubInternal => hub as HubInternal

/** @internal */
export const make = (options: Hub.Options): Effect.Effect<Hub.Hub, InvalidEventError> =>
  Effect.gen(function*() {
    const cfg = config(options)
    if (Result.isFailure(cfg)) return yield* Effect.fail(cfg.failure)
    const clock = yield* Clock.Clock
    const log = options.log ?? memoryLog("hub", cfg.success, options, clock, yield* Random.Random)
    return makeUnsafe(cfg.success, log, clock, yield* Effect.context<never>())
  })

/** @internal */
export const publish = (self: Hub.Hub, event: Hub.EventInput) => impl(self).publish(event)

/** @internal */
export const publishUnsafe = (self: Hub.Hub, event: Hub.EventInput) => impl(self).publishUnsafe(event)

const stringify = (value: unknown): Result.Result<string, UnserializableDataError> => {
  try {
    const json = JSON.stringify(value)
    return typeof json === "string"
      ? Result.succeed(json)
      : Result.fail(new UnserializableDataError({ reason: `${typeof value} has no JSON representation` }))
  } catch (cause) {
    return Result.fail(
      new UnserializableDataError({ reason: cause instanceof Error ? cause.message : String(cause), cause })
    )
  }
}

/** @internal */
export const publishJson = (
  self: Hub.Hub,
  value: unknown,
  fields?: Hub.JsonFields
): Effect.Effect<Hub.Published, Hub.PublishError | UnserializableDataError> =>
  Effect.suspend((): Effect.Effect<Hub.Published, Hub.PublishError | UnserializableDataError> => {
    const json = stringify(value)
    if (Result.isFailure(json)) {
      impl(self).countRejection(json.failure)
      return Effect.fail(json.failure)
    }
    return impl(self).publish({ ...fields, data: json.success })
  })

/** @internal */
export const publishSchema = <S extends Schema.Top>(
  self: Hub.Hub,
  schema: S,
  value: S["Type"],
  fields?: Hub.JsonFields
): Effect.Effect<Hub.Published, Hub.PublishError | UnserializableDataError, S["EncodingServices"]> =>
  Schema.encodeEffect(Schema.fromJsonString(schema))(value).pipe(
    Effect.mapError((issue) => {
      const error = new UnserializableDataError({ reason: issue.message, cause: issue })
      impl(self).countRejection(error)
      return error
    }),
    Effect.flatMap((json) => impl(self).publish({ ...fields, data: json }))
  )

/** @internal */
export const subscribe = (self: Hub.Hub, options: Hub.SubscribeOptions) => impl(self).subscribe(options)
