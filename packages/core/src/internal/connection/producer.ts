/**
 * A connection's producer: what it is given (its `Sender`, the write end of the mailbox)
 * and how its end becomes the mailbox's end marker.
 *
 * - Every send waits while the mailbox is full under `suspend` (never under
 *   the `sliding` and `dropping` strategies); once the connection no longer accepts, the
 *   sending fiber is interrupted, which ends a producer loop without any
 *   check in user code.
 * - A stream's batches are encoded at most a mailbox's worth ahead of the
 *   writer: a huge batch costs neither a burst of encoding nor a copy.
 * - The producer's exit decides the end, read after it ended: completed
 *   (then `terminal.completed`), failed (`terminal.failed`, by default one
 *   safe `error` event), or interrupted.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type * as Connection from "../../Connection.ts"
import type { Frame, InvalidEventError } from "../../SseEvent.ts"
import { frameBytes } from "../encoder.ts"
import type { End, Mailbox } from "./mailbox.ts"
import { completed, failed, interrupted } from "./outcome.ts"

const defaultFailureFrames = (): ReadonlyArray<Frame> => [{
  _tag: "Event",
  event: "error",
  data: JSON.stringify({ message: "The event stream failed" })
}]

/**
 * Frames from user code (renderers, notices) may be invalid: they are logged
 * and skipped rather than losing the whole sequence.
 *
 * @internal
 */
export const encodeAll = (id: string, frames: ReadonlyArray<Frame>): Effect.Effect<ReadonlyArray<Uint8Array>> =>
  Effect.suspend(() => {
    const out: Array<Uint8Array> = []
    const invalid: Array<string> = []
    for (const frame of frames) {
      const bytes = frameBytes(frame)
      if (bytes instanceof Uint8Array) out.push(bytes)
      else invalid.push(bytes.message)
    }
    return invalid.length === 0
      ? Effect.succeed(out)
      : Effect.as(Effect.logWarning(`sluice connection ${id}: terminal frames skipped`, invalid), out)
  })

/**
 * An offer that waits for room under `suspend` (a drop counts as handled
 * under the `sliding` and `dropping` strategies): `false` once the mailbox no longer accepts.
 *
 * @internal
 */
export const offerOf = (box: Mailbox): (bytes: Uint8Array) => Effect.Effect<boolean> =>
  box.overflow === "suspend"
    ? (bytes) => box.offer(bytes)
    : (bytes) => Effect.sync(() => box.offerUnsafe(bytes) || box.accepting())

const refuseOffer = Effect.interrupt

/** The producer's side of the mailbox. @internal */
export const mailboxOf = (box: Mailbox): Connection.Sender => {
  const offer = offerOf(box)
  // In order: what fits at once, then one waiting offer at a time.
  const offerAll = (frames: ReadonlyArray<Uint8Array>): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      let i = 0
      while (i < frames.length && box.offerUnsafe(frames[i]!)) i++
      if (i === frames.length) return Effect.succeed(true)
      if (!box.accepting()) return Effect.succeed(false)
      const rest = frames.slice(i)
      const next = (k: number): Effect.Effect<boolean> =>
        k === rest.length
          ? Effect.succeed(true)
          : Effect.flatMap(offer(rest[k]!), (ok) => ok ? next(k + 1) : Effect.succeed(false))
      return next(0)
    })
  return {
    send: (frame) =>
      Effect.suspend(() => {
        const bytes = frameBytes(frame)
        if (!(bytes instanceof Uint8Array)) return Effect.fail(bytes)
        return Effect.flatMap(offer(bytes), (ok) => ok ? Effect.void : refuseOffer)
      }),
    sendAll: (frames) =>
      Effect.suspend(() => {
        const it = frames[Symbol.iterator]()
        let failure: InvalidEventError | undefined
        let done = false
        const nextSlice = (): Array<Uint8Array> => {
          const out: Array<Uint8Array> = []
          while (out.length < box.capacity) {
            const next = it.next()
            if (next.done) {
              done = true
              break
            }
            const bytes = frameBytes(next.value)
            if (!(bytes instanceof Uint8Array)) {
              failure = bytes
              done = true
              break
            }
            out.push(bytes)
          }
          return out
        }
        const loop: Effect.Effect<void, InvalidEventError> = Effect.suspend(() => {
          const slice = nextSlice()
          const offered = slice.length === 0
            ? Effect.void
            : Effect.flatMap(offerAll(slice), (ok) => ok ? Effect.void : refuseOffer)
          return Effect.andThen(
            offered,
            Effect.suspend(() => failure !== undefined ? Effect.fail(failure) : done ? Effect.void : loop)
          )
        })
        return loop
      }),
    sendBytes: (bytes) => Effect.flatMap(offer(bytes), (ok) => ok ? Effect.void : refuseOffer)
  }
}

/**
 * The producer's run: it, then its exit turned into the mailbox's end
 * marker (with the terminal frames). `undefined` without a producer.
 *
 * @internal
 */
export const run = <E, R>(
  id: string,
  box: Mailbox,
  producer: Connection.Producer<E, R> | undefined,
  terminal: Connection.Terminal<E>
): Effect.Effect<void, never, R> | undefined => {
  if (producer === undefined) return undefined
  const mailbox = mailboxOf(box)
  const effect: Effect.Effect<void, E, R> = Stream.isStream(producer)
    ? Stream.runForEachArray(
      producer as Stream.Stream<Frame, E, R>,
      (frames) => mailbox.sendAll(frames)
    ) as Effect.Effect<
      void,
      E,
      R
    >
    : (producer as (mailbox: Connection.Sender) => Effect.Effect<void, E, R>)(mailbox)
  const endWith = (end: End) => Effect.sync(() => box.endUnsafe(end))
  return Effect.ignore(Effect.onExit(effect, (exit) => {
    if (Exit.isSuccess(exit)) {
      return Effect.flatMap(
        encodeAll(id, terminal.completed?.() ?? []),
        (frames) => endWith({ ended: completed, frames })
      )
    }
    if (Cause.hasInterruptsOnly(exit.cause)) return endWith({ ended: interrupted, frames: [] })
    const cause = exit.cause as Cause.Cause<E>
    return Effect.flatMap(
      encodeAll(id, (terminal.failed ?? defaultFailureFrames)(cause)),
      (frames) => endWith({ ended: failed(cause), frames })
    )
  }))
}
