/**
 * Producers for exercising connections in tests, with counters that say how
 * far they got and how they ended.
 *
 * - {@link aggressive}: a tight loop of `n` events, offered one at a time, so
 *   the mailbox fills and the producer blocks (the case that leaks in naive
 *   servers when the client goes away).
 * - {@link oscillating}: bursts of events separated by pauses on the Effect
 *   clock (TestClock drives them).
 * - {@link failing}: `n` events, then a failure.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Sender } from "../Connection.ts"
import type { Event } from "../SseEvent.ts"

/**
 * How a test producer ended (`running` until it does).
 *
 * @since 0.1.0
 * @category models
 */
export type State = "running" | "completed" | "failed" | "interrupted"

/**
 * @since 0.1.0
 * @category models
 */
export interface TestProducer<E = never> {
  /** Pass this as a connection's `producer`. */
  readonly producer: (sender: Sender) => Effect.Effect<void, E>
  /**
   * Events whose offer completed: the producer saw them accepted.
   *
   * An offer can be accepted by the mailbox and the producer interrupted
   * before it resumes, so the connection may hold one event more than this:
   * `offered() <= delivered + discarded <= attempted()`.
   */
  readonly offered: () => number
  /** Events the producer started to offer (at most one more than `offered`). */
  readonly attempted: () => number
  readonly state: () => State
  /** How many times the producer's finalizer ran (must be 1 once it ended). */
  readonly finalized: () => number
}

/**
 * The event a test producer emits for sequence number `i` (1-based):
 * `id` and `data` are `i`.
 *
 * @example
 * ```ts
 * import { TestProducer } from "@sluice/core/testing"
 *
 * TestProducer.event(3) // { _tag: "Event", id: "3", data: "3" }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const event = (i: number): Event => ({ _tag: "Event", id: String(i), data: String(i) })

const instrument = <E>(
  body: (sender: Sender, send: (i: number) => Effect.Effect<void>) => Effect.Effect<void, E>
): TestProducer<E> => {
  let offered = 0
  let attempted = 0
  let state: State = "running"
  let finalized = 0
  return {
    producer: (sender) =>
      body(sender, (i) =>
        Effect.suspend(() => {
          attempted++
          return Effect.map(Effect.orDie(sender.send(event(i))), () => {
            offered++
          })
        })).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              finalized++
              state = exit._tag === "Success"
                ? "completed"
                : exit.cause.reasons.every((r) => r._tag === "Interrupt")
                ? "interrupted"
                : "failed"
            })
          )
        ),
    offered: () => offered,
    attempted: () => attempted,
    state: () => state,
    finalized: () => finalized
  }
}

/**
 * `n` events offered one at a time as fast as the mailbox accepts them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Connection } from "@sluice/core"
 * import { TestProducer, TestSink } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const sink = yield* TestSink.make({ failAfter: 3 })
 *   const producer = TestProducer.aggressive(1_000)
 *   const outcome = yield* Connection.run({ producer: producer.producer, sink: sink.sink })
 *   return [outcome._tag, producer.offered()] // ["ClientGone", …]: the producer was stopped early
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const aggressive = (n: number): TestProducer =>
  instrument((_, send) =>
    Effect.gen(function*() {
      for (let i = 1; i <= n; i++) yield* send(i)
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface OscillatingOptions {
  /** Events per burst. */
  readonly burst: number
  /** Number of bursts; each is followed by a pause. */
  readonly pauses: number
  /** Pause after each burst (Effect clock). */
  readonly pause: Duration.Input
}

/**
 * `pauses` bursts of `burst` events, each followed by a `pause`. Events are
 * numbered continuously across bursts.
 *
 * @example
 * ```ts
 * import { TestProducer } from "@sluice/core/testing"
 *
 * // 3 bursts of 50 events, each followed by a second's pause.
 * const bursty = TestProducer.oscillating({ burst: 50, pauses: 3, pause: "1 second" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const oscillating = (options: OscillatingOptions): TestProducer => {
  const pause = Duration.fromInputUnsafe(options.pause)
  return instrument((_, send) =>
    Effect.gen(function*() {
      let i = 0
      for (let b = 0; b < options.pauses; b++) {
        for (let k = 0; k < options.burst; k++) yield* send(++i)
        yield* Effect.sleep(pause)
      }
    })
  )
}

/**
 * `n` events, then fails with `error`.
 *
 * @example
 * ```ts
 * import { TestProducer } from "@sluice/core/testing"
 *
 * const broken = TestProducer.failing(5, "database down") // 5 events, then fails with "database down"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const failing = <E>(n: number, error: E): TestProducer<E> =>
  instrument((_, send) =>
    Effect.gen(function*() {
      for (let i = 1; i <= n; i++) yield* send(i)
      return yield* Effect.fail(error)
    })
  )
