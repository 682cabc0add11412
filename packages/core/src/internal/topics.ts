import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as Hub from "../Hub.ts"
import type { InvalidEventError } from "../SseEvent.ts"
import type * as Topics from "../Topics.ts"
import { TopicLimitError, TypeId } from "../Topics.ts"
import { FiberLabel } from "./fiberLabel.ts"
import * as hubs from "./hub.ts"
import * as metrics from "./metrics.ts"
import { atLeast, check } from "./options.ts"

interface Entry {
  readonly hub: hubs.HubInternal
  /** Publishes and subscribes under way (a subscriber, once registered, counts in the hub). */
  users: number
  /** Sleeps until the history expires, to release an idle topic. */
  timer: Fiber.Fiber<void> | undefined
}

interface TopicsInternal extends Topics.Topics {
  readonly use: <A, E, R>(
    topic: string,
    f: (hub: hubs.HubInternal) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | TopicLimitError | InvalidEventError, R>
}

/** @internal */
export const make = (options: Topics.Options): Effect.Effect<Topics.Topics, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Scope.Scope
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    const context = yield* Effect.context<never>()
    check("Topics", "maxTopics (a number, at least 1)", atLeast(options.maxTopics, 1, false), options.maxTopics)
    const maxTopics = Math.floor(options.maxTopics ?? 10_000)
    const shared = options.hub
    const hubOptions: (topic: string) => Hub.Options = typeof shared === "function" ? shared : () => shared ?? {}
    const entries = new Map<string, Entry>()
    let closed = false

    const release = (topic: string, entry: Entry) => {
      if (entry.users > 0 || entries.get(topic) !== entry) return
      if (entry.hub.isIdle()) {
        entries.delete(topic)
        entry.timer?.interruptUnsafe()
        metrics.topicsActive.modifyUnsafe(-1, context)
        return
      }
      if (entry.hub.subscriberCount() > 0 || entry.timer !== undefined || closed) return
      // Idle but for its history: look again when the newest event expires.
      const expiresAt = entry.hub.expiresAt()
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

    const acquire = (topic: string): Result.Result<Entry, TopicLimitError | InvalidEventError> => {
      const existing = entries.get(topic)
      if (existing !== undefined) {
        existing.users++
        return Result.succeed(existing)
      }
      if (entries.size >= maxTopics) return Result.fail(new TopicLimitError({ topic, max: maxTopics }))
      const config = hubOptions(topic)
      const cfg = hubs.config(config)
      if (Result.isFailure(cfg)) return Result.fail(cfg.failure)
      const log = hubs.memoryLog(topic, cfg.success, config, clock, random)
      const entry: Entry = { hub: hubs.makeUnsafe(cfg.success, log, clock, context), users: 1, timer: undefined }
      entry.hub.onEmpty = () => release(topic, entry)
      entries.set(topic, entry)
      metrics.topicsActive.modifyUnsafe(1, context)
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
      stats: (topic) => entries.get(topic)?.hub.stats(),
      use: <A, E, R>(topic: string, f: (hub: hubs.HubInternal) => Effect.Effect<A, E, R>) =>
        Effect.suspend((): Effect.Effect<A, E | TopicLimitError | InvalidEventError, R> => {
          const acquired = acquire(topic)
          if (Result.isFailure(acquired)) return Effect.fail(acquired.failure)
          const entry = acquired.success
          return Effect.ensuring(
            Effect.suspend(() => f(entry.hub)),
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
