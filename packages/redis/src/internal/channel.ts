/**
 * A node's Pub/Sub subscription that cannot starve silently: one channel,
 * one subscription per node, watched by pings and re-established when it
 * stops delivering.
 *
 * ```text
 *            ┌─────────── every `ping`: nothing received since the last tick? ───────────┐
 *            ▼                                                                           │
 * subscribe ─▶ messages ─▶ onMessage        PUBLISH {"p": node} ──▶ must come back by the next tick
 *    ▲                                           │ did not: the subscription is dead
 *    └──────────── re-subscribe (onSubscribed: the owner checks what it missed) ◀───────┘
 * ```
 *
 * A subscription counts as in place once a ping of its own came back through
 * it; one that fails (its connection could not be re-established) or never
 * delivers is re-established the same way. Messages published while a subscription was
 * down are not replayed by Pub/Sub: the owner learns that it must catch up
 * from `onSubscribed` (and from its own position checks).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Redis from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/** @internal */
export interface Options {
  readonly channel: string
  readonly node: string
  /** Milliseconds between health ticks. */
  readonly pingMillis: number
  /** Every message but this node's pings. Called in order, synchronously. */
  readonly onMessage: (message: string) => void
  /** After each (re-)subscription; the first one too. */
  readonly onSubscribed: (first: boolean) => void
}

/** What the owner can see of the subscription. @internal */
export interface Channel {
  /** Subscriptions made so far (1 after the first). */
  readonly subscriptions: () => number
  /** Resolves once the first subscription is in place. */
  readonly ready: Effect.Effect<void>
}

/** A ping: `{"p":"<node>"}`. Every node ignores every ping; only the sender counts it as a sign of life. @internal */
export const ping = (node: string): string => JSON.stringify({ p: node })

/** @internal */
export const isPing = (message: string): boolean => message.startsWith("{\"p\":")

/**
 * Keeps a subscription to `options.channel` alive in the current scope.
 *
 * @internal
 */
export const run = (redis: Redis.Redis["Service"], options: Options): Effect.Effect<Channel, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ready = yield* Deferred.make<void>()
    let subscriptions = 0
    const pingText = ping(options.node)

    const session = Effect.gen(function*() {
      const queue = yield* redis.subscribe(options.channel)
      const confirmed = yield* Deferred.make<void>()
      let received = yield* Clock.currentTimeMillis
      let pinged = false

      const reader = Effect.forever(
        Effect.flatMap(
          Queue.takeAll(queue),
          (messages) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.sync(() => {
                received = now
                pinged = false
                Deferred.doneUnsafe(confirmed, Effect.void)
                for (const m of messages) {
                  if (!isPing(m.message)) options.onMessage(m.message)
                }
              }))
        )
      )
      const reading = yield* Effect.forkScoped(Effect.ignore(reader))

      // In place only once it delivers: our own ping must come back through it
      // (a subscription whose connection failed is an empty queue otherwise).
      yield* Effect.ignore(Effect.timeout(redis.send("PUBLISH", options.channel, pingText), options.pingMillis))
      const works = yield* Effect.timeoutOption(Deferred.await(confirmed), options.pingMillis)
      if (works._tag === "None") return
      subscriptions++
      options.onSubscribed(subscriptions === 1)
      yield* Deferred.succeed(ready, undefined)

      // Completes when the subscription stopped delivering.
      const watchdog = Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(options.pingMillis)
          const now = yield* Clock.currentTimeMillis
          if (now - received < options.pingMillis) continue
          if (pinged) return
          pinged = true
          // A ping that failed or got no answer (Redis down, or stopped) says
          // nothing about the subscription: the next tick sends another.
          const sent = yield* Effect.result(
            Effect.timeout(redis.send("PUBLISH", options.channel, pingText), options.pingMillis)
          )
          if (sent._tag === "Failure") pinged = false
        }
      })
      yield* Effect.raceFirst(Fiber.join(reading), watchdog)
    })

    const loop = Effect.scoped(session).pipe(
      Effect.repeat(Schedule.spaced(Math.min(options.pingMillis, 1_000)))
    )
    yield* Effect.forkScoped(loop)
    return { subscriptions: () => subscriptions, ready: Deferred.await(ready) }
  })
