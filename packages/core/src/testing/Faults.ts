/**
 * Seeded faults for the data that flows between fibers: drop, duplicate,
 * stall, fail or interrupt at the k-th element of a stream or a queue.
 *
 * A fault names the element it hits: a fixed position (`3`) or a range
 * (`{ between: [1, 10] }`) drawn from effect's `Random` service when the
 * stream or queue starts. Inside a bubble or a race check `Random` is seeded
 * by the run, so a range is explored across runs and a failing run replays
 * with the same position.
 *
 * | fault | the k-th element… |
 * | --- | --- |
 * | `drop` | is lost (the producer sees it accepted) |
 * | `duplicate` | arrives twice |
 * | `stall` | waits `duration` (default: forever) before it arrives |
 * | `fail` | fails the stream or the offer with {@link FaultError} |
 * | `interrupt` | interrupts the fiber that carries it |
 *
 * Interrupting a random fiber at a scheduling point is an option of the race
 * runner (`Race.check(program, { faults: { interrupt: 0.05 } })`), since it
 * needs the scheduler.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import { check } from "../internal/options.ts"

/**
 * Which element a fault hits (1-based): a position, or a range drawn from
 * `Random` when the stream or queue starts.
 *
 * @since 0.2.0
 * @category models
 */
export type At = number | { readonly between: readonly [number, number] }

/**
 * A fault, built by {@link drop}, {@link duplicate}, {@link stall},
 * {@link fail} or {@link interrupt}.
 *
 * @since 0.2.0
 * @category models
 */
export type Fault =
  | { readonly _tag: "Drop"; readonly at: At }
  | { readonly _tag: "Duplicate"; readonly at: At }
  | { readonly _tag: "Stall"; readonly at: At; readonly duration: Duration.Duration | undefined }
  | { readonly _tag: "Fail"; readonly at: At }
  | { readonly _tag: "Interrupt"; readonly at: At }

/**
 * The error of a `fail` fault.
 *
 * @since 0.2.0
 * @category errors
 */
export class FaultError extends Data.TaggedError("FaultError")<{
  /** The element (1-based) the fault hit. */
  readonly at: number
}> {
  override get message(): string {
    return `injected fault at element ${this.at}`
  }
}

const checkAt = (where: string, at: At): At => {
  if (typeof at === "number") check(where, "at", Number.isInteger(at) && at >= 1, at)
  else {
    const [min, max] = at.between
    check(where, "at.between", Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max >= min, at.between)
  }
  return at
}

/**
 * The k-th element is lost.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * // The 3rd element never arrives; a consumer that counts must notice.
 * const counted = Stream.range(1, 5).pipe((s) => Faults.stream(s, Faults.drop(3)), Stream.runCollect)
 * // Somewhere between the 2nd and the 4th, drawn from the seeded Random:
 * const anywhere = Faults.drop({ between: [2, 4] })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const drop = (at: At): Fault => ({ _tag: "Drop", at: checkAt("Faults.drop", at) })

/**
 * The k-th element arrives twice.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * const twice = Faults.stream(Stream.range(1, 5), Faults.duplicate(2)) // 1, 2, 2, 3, 4, 5
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const duplicate = (at: At): Fault => ({ _tag: "Duplicate", at: checkAt("Faults.duplicate", at) })

/**
 * The k-th element waits `duration` on the Effect clock before it arrives
 * (forever when omitted: the consumer must give up by itself).
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * // The 2nd element waits 30 s on the Effect clock (TestClock moves it).
 * const slow = Faults.stream(Stream.range(1, 3), Faults.stall(2, "30 seconds"))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const stall = (at: At, duration?: Duration.Input): Fault => ({
  _tag: "Stall",
  at: checkAt("Faults.stall", at),
  duration: duration === undefined ? undefined : Duration.fromInputUnsafe(duration)
})

/**
 * The k-th element fails the stream (or the offer) with {@link FaultError}.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * const broken = Faults.stream(Stream.range(1, 3), Faults.fail(2)) // 1, then a FaultError
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const fail = (at: At): Fault => ({ _tag: "Fail", at: checkAt("Faults.fail", at) })

/**
 * The k-th element interrupts the fiber carrying it.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * const cut = Faults.stream(Stream.range(1, 3), Faults.interrupt(2)) // 1, then the fiber is interrupted
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const interrupt = (at: At): Fault => ({ _tag: "Interrupt", at: checkAt("Faults.interrupt", at) })

/** The position a fault hits, drawn once (from `Random` for a range). */
const position = (fault: Fault): Effect.Effect<number> =>
  typeof fault.at === "number" ? Effect.succeed(fault.at) : Random.nextIntBetween(...fault.at.between)

const hit = (fault: Fault, at: number): Effect.Effect<void, FaultError> => {
  switch (fault._tag) {
    case "Stall":
      return fault.duration === undefined ? Effect.never : Effect.sleep(fault.duration)
    case "Fail":
      return Effect.fail(new FaultError({ at }))
    case "Interrupt":
      return Effect.interrupt
    default:
      return Effect.void
  }
}

/**
 * `self` with `fault` applied to its k-th element.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * // 1, 2, 4: the third element is lost
 * const lossy = Faults.stream(Stream.make(1, 2, 3, 4), Faults.drop(3))
 * // fails with FaultError at an element between 1 and 4, chosen by the run's seed
 * const flaky = Faults.stream(Stream.make(1, 2, 3, 4), Faults.fail({ between: [1, 4] }))
 * ```
 *
 * @since 0.2.0
 * @category streams
 */
export const stream = <A, E, R>(self: Stream.Stream<A, E, R>, fault: Fault): Stream.Stream<A, E | FaultError, R> =>
  Stream.unwrap(Effect.map(position(fault), (at) => {
    let n = 0
    return Stream.flatMap(self, (a): Stream.Stream<A, FaultError> => {
      n++
      if (n !== at) return Stream.succeed(a)
      switch (fault._tag) {
        case "Drop":
          return Stream.empty
        case "Duplicate":
          return Stream.make(a, a)
        default:
          return Stream.fromEffect(Effect.as(hit(fault, at), a))
      }
    })
  }))

/**
 * The offering or taking side of a queue, with a fault at its k-th element.
 *
 * @since 0.2.0
 * @category models
 */
export interface FaultyQueue<A, E> {
  /** Offers to the queue; with `side: "offer"` the k-th offer meets the fault. */
  readonly offer: (value: A) => Effect.Effect<boolean, FaultError>
  /** Takes from the queue; with `side: "take"` the k-th take meets the fault. */
  readonly take: Effect.Effect<A, E | FaultError>
  /** The queue itself. */
  readonly queue: Queue.Queue<A, E>
}

/**
 * Wraps `queue` so that the k-th element offered (`side: "offer"`, the
 * default) or taken (`side: "take"`) meets `fault`. Pass `offer` to the
 * producer under test, or `take` to the consumer.
 *
 * @example
 * ```ts
 * import { Effect, Queue } from "effect"
 * import { Faults } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const faulty = yield* Faults.queue(yield* Queue.unbounded<number>(), Faults.duplicate(2))
 *   yield* faulty.offer(1)
 *   yield* faulty.offer(2) // enqueued twice
 * })
 * ```
 *
 * @since 0.2.0
 * @category queues
 */
export const queue = <A, E>(
  self: Queue.Queue<A, E>,
  fault: Fault,
  options?: { readonly side?: "offer" | "take" | undefined }
): Effect.Effect<FaultyQueue<A, E>> =>
  Effect.map(position(fault), (at) => {
    const side = options?.side ?? "offer"
    check("Faults.queue", "side", side === "offer" || side === "take", side)
    let offers = 0
    let takes = 0
    let again: { readonly value: A } | undefined = undefined
    const offer = (value: A): Effect.Effect<boolean, FaultError> =>
      Effect.suspend(() => {
        if (side !== "offer" || ++offers !== at) return Queue.offer(self, value)
        switch (fault._tag) {
          case "Drop":
            return Effect.succeed(true)
          case "Duplicate":
            return Effect.andThen(Queue.offer(self, value), Queue.offer(self, value))
          default:
            return Effect.andThen(hit(fault, at), Queue.offer(self, value))
        }
      })
    const take: Effect.Effect<A, E | FaultError> = Effect.suspend(() => {
      if (again !== undefined) {
        const { value } = again
        again = undefined
        return Effect.succeed(value)
      }
      if (side !== "take" || ++takes !== at) return Queue.take(self)
      switch (fault._tag) {
        case "Drop":
          return Effect.andThen(Queue.take(self), Queue.take(self))
        case "Duplicate":
          return Effect.tap(Queue.take(self), (value) => Effect.sync(() => (again = { value })))
        default:
          return Effect.andThen(hit(fault, at), Queue.take(self))
      }
    })
    return { offer, take, queue: self }
  })
