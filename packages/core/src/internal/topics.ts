/**
 * The topic collection behind `Topics.make`: hubs by name, each opened on
 * first use (over the `Log.Store` in context, or an in-memory log) in a scope
 * of its own, and released once it has no subscriber, no publish under way
 * and no history left to keep (a timer waits for the newest entry to expire).
 * The number of live topics is capped (`TopicLimitError`).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as Hub from "../Hub.ts"
import * as Log from "../Log.ts"
import type { InvalidEventError } from "../SseEvent.ts"
import type * as Topics from "../Topics.ts"
import { FiberLabel } from "./fiberLabel.ts"
import * as hubs from "./hub.ts"
import type { Config } from "./hub/config.ts"
import * as metrics from "./metrics.ts"
import { atLeast, check } from "./options.ts"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@sluice/core/Topics") as never

/** @internal */
export class TopicLimitError extends Data.TaggedError("TopicLimitError")<{
  readonly topic: string
  readonly max: number
}> {
  override get message(): string {
    return `cannot open topic ${JSON.stringify(this.topic)}: ${this.max} topics are already open`
  }
}

interface Entry {
  /** Set once the topic's log is open (at once for an in-memory log). */
  hub: hubs.HubInternal | undefined
  /** Completed when the log is open, or failed with why it could not be. */
  readonly opened: Deferred.Deferred<hubs.HubInternal, Log.LogError>
  /** Publishes and subscribes under way (a subscriber, once registered, counts in the hub). */
  users: number
  /** Sleeps until the history expires, to release an idle topic. */
  timer: Fiber.Fiber<void> | undefined
  /** Where a store's log lives: closed when the topic is released. */
  readonly scope: Scope.Closeable | undefined
}

interface TopicsInternal extends Topics.Topics {
  readonly use: <A, E, R>(
    topic: string,
    f: (hub: hubs.HubInternal) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | TopicLimitError | InvalidEventError | Log.LogError, R>
}

// What a topic's hub options say about its log.
const logOptions = (options: Hub.Options): Log.Options =>
  options.history === false ? { maxEvents: 0 } : options.history ?? {}

/** @internal */
export const make = (options: Topics.Options): Effect.Effect<Topics.Topics, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Scope.Scope
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    const context = yield* Effect.context<never>()
    const store = Option.getOrUndefined(yield* Effect.serviceOption(Log.Store))
    check("Topics", "maxTopics (a number, at least 1)", atLeast(options.maxTopics, 1, false), options.maxTopics)
    const maxTopics = Math.floor(options.maxTopics ?? 10_000)
    const shared = options.hub
    const hubOptions: (topic: string) => Hub.Options = typeof shared === "function" ? shared : () => shared ?? {}
    const entries = new Map<string, Entry>()
    let closed = false

    const forget = (topic: string, entry: Entry) => {
      entries.delete(topic)
      entry.timer?.interruptUnsafe()
      metrics.topicsActive.modifyUnsafe(-1, context)
      if (entry.scope !== undefined) Effect.runForkWith(context)(Scope.close(entry.scope, Exit.void))
    }

    const release = (topic: string, entry: Entry) => {
      const hub = entry.hub
      if (entry.users > 0 || entries.get(topic) !== entry || hub === undefined) return
      if (hub.isIdle()) return forget(topic, entry)
      if (hub.subscriberCount() > 0 || entry.timer !== undefined || closed) return
      // Idle but for its history: look again when the newest event expires.
      const expiresAt = hub.expiresAt()
      if (expiresAt === undefined) return
      const wait = Math.max(0, expiresAt - clock.currentTimeMillisUnsafe())
      entry.timer = Effect.runForkWith(Context.add(context, FiberLabel, `sluice/topics/${topic}/expiry`))(
        Effect.andThen(
          Effect.sleep(wait),
          Effect.sync(() => {
            entry.timer = undefined
            release(topic, entry)
          })
        )
      )
    }

    const ready = (topic: string, entry: Entry, cfg: Config, log: Log.Log) => {
      const hub = hubs.makeUnsafe(cfg, log, clock, context)
      hub.onEmpty = () => release(topic, entry)
      entry.hub = hub
      Deferred.doneUnsafe(entry.opened, Effect.succeed(hub))
    }

    // Opens the topic's log from the store, in the topic's own scope, in a
    // fiber of its own: no caller's interruption can leave it half open for
    // the others waiting.
    const open = (topic: string, entry: Entry, cfg: Config, config: Hub.Options) =>
      Effect.runForkWith(Context.add(context, FiberLabel, `sluice/topics/${topic}/open`))(
        Effect.exit(Scope.provide(store!.open(topic, logOptions(config)), entry.scope!)).pipe(
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit)) return ready(topic, entry, cfg, exit.value)
              // Forgotten before the waiters resume: whoever sees the error sees no topic.
              forget(topic, entry)
              Deferred.doneUnsafe(entry.opened, Effect.failCause(exit.cause))
            })
          )
        )
      )

    // Counts a user of the topic (creating it if needed) in one synchronous step.
    const acquire = (topic: string): Result.Result<Entry, TopicLimitError | InvalidEventError> => {
      const existing = entries.get(topic)
      if (existing !== undefined) {
        existing.users++
        return Result.succeed(existing)
      }
      if (entries.size >= maxTopics) return Result.fail(new TopicLimitError({ topic, max: maxTopics }))
      const config = hubOptions(topic)
      // Topics open their logs themselves (from the store, or in memory).
      check("Topics", "hub.log (topics open their own logs; provide a Log.Store)", config.log === undefined, "a log")
      if (store !== undefined) {
        check("Topics", "hub.epoch (a store's logs have their own epochs)", config.epoch === undefined, config.epoch)
      }
      const cfg = hubs.config(config)
      if (Result.isFailure(cfg)) return Result.fail(cfg.failure)
      const entry: Entry = {
        hub: undefined,
        opened: Deferred.makeUnsafe(),
        users: 1,
        timer: undefined,
        scope: store === undefined ? undefined : Scope.forkUnsafe(scope, "sequential")
      }
      entries.set(topic, entry)
      metrics.topicsActive.modifyUnsafe(1, context)
      if (store === undefined) {
        ready(topic, entry, cfg.success, hubs.memoryLog(topic, cfg.success, config, clock, random))
      } else open(topic, entry, cfg.success, config)
      return Result.succeed(entry)
    }

    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        closed = true
        for (const entry of entries.values()) {
          entry.timer?.interruptUnsafe()
          entry.timer = undefined
        }
      })
    )

    const topics: TopicsInternal = {
      [TypeId]: TypeId,
      size: () => entries.size,
      has: (topic) => entries.has(topic),
      stats: (topic) => entries.get(topic)?.hub?.stats(),
      use: <A, E, R>(topic: string, f: (hub: hubs.HubInternal) => Effect.Effect<A, E, R>) =>
        Effect.suspend((): Effect.Effect<A, E | TopicLimitError | InvalidEventError | Log.LogError, R> => {
          const acquired = acquire(topic)
          if (Result.isFailure(acquired)) return Effect.fail(acquired.failure)
          const entry = acquired.success
          const hub = entry.hub === undefined ? Deferred.await(entry.opened) : Effect.succeed(entry.hub)
          return Effect.ensuring(
            Effect.flatMap(hub, f),
            Effect.sync(() => {
              entry.users--
              release(topic, entry)
            })
          )
        })
    }
    return topics
  })

const use = (self: Topics.Topics) => (self as TopicsInternal).use

/** @internal */
export const publish = (self: Topics.Topics, topic: string, event: Hub.EventInput) =>
  use(self)(topic, (hub) => hub.publish(event))

/** @internal */
export const publishJson = (self: Topics.Topics, topic: string, value: unknown, fields?: Hub.JsonFields) =>
  use(self)(topic, (hub) => hubs.publishJson(hub, value, fields))

/** @internal */
export const subscribe = (self: Topics.Topics, topic: string, options: Hub.SubscribeOptions) =>
  use(self)(topic, (hub) => hub.subscribe(options))
