/**
 * A fault-injecting {@link Sink} for tests: it records every chunk written and
 * can fail after N writes, hang forever, or take a delay per write.
 *
 * Waiting on a test sink uses the writes themselves (`awaitWrites`), never
 * real time, so tests built on it are deterministic.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { type Sink, WriteError } from "../Sink.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The first `failAfter` writes succeed; every later write fails with `WriteError` (reason `closed`). */
  readonly failAfter?: number | undefined
  /** The first `hangAfter` writes succeed; the next one never completes (a half-open client). */
  readonly hangAfter?: number | undefined
  /** Each write takes this long (on the Effect clock, so TestClock controls it). */
  readonly delay?: Duration.Input | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TestSink {
  readonly sink: Sink
  /** Chunks successfully written, in order. */
  readonly chunks: () => ReadonlyArray<Uint8Array>
  /** Everything successfully written, decoded as UTF-8. */
  readonly text: () => string
  /** Number of write attempts (including failed and hanging ones). */
  readonly attempts: () => number
  /** Waits until at least `n` writes have succeeded. */
  readonly awaitWrites: (n: number) => Effect.Effect<void>
  /** Waits until a write has failed or started hanging. */
  readonly awaitFault: Effect.Effect<void>
}

/**
 * Creates a test sink.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Connection, SseEvent } from "@sluice/core"
 * import { TestSink } from "@sluice/core/testing"
 *
 * const program = Effect.gen(function*() {
 *   const t = yield* TestSink.make({ failAfter: 2 })
 *   const outcome = yield* Connection.run({ producer: Stream.make(SseEvent.data("a")), sink: t.sink })
 *   return t.text() // "data: a\n\n"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<TestSink> =>
  Effect.sync(() => {
    const chunks: Array<Uint8Array> = []
    const waiters: Array<{ n: number; done: Deferred.Deferred<void> }> = []
    const fault = Deferred.makeUnsafe<void>()
    let attempts = 0
    const decoder = new TextDecoder()

    const record = (chunk: Uint8Array) => {
      // Copy: a caller may reuse its buffer after the write completes.
      chunks.push(chunk.slice())
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!
        if (chunks.length >= w.n) {
          waiters.splice(i, 1)
          Deferred.doneUnsafe(w.done, Effect.void)
        }
      }
    }

    const sink: Sink = (chunk) =>
      Effect.suspend(() => {
        const n = ++attempts
        if (options.failAfter !== undefined && n > options.failAfter) {
          Deferred.doneUnsafe(fault, Effect.void)
          return Effect.fail(
            new WriteError({ reason: "closed", detail: `test sink fails after ${options.failAfter} writes` })
          )
        }
        if (options.hangAfter !== undefined && n > options.hangAfter) {
          Deferred.doneUnsafe(fault, Effect.void)
          return Effect.never
        }
        const commit = Effect.sync(() => record(chunk))
        return options.delay === undefined ? commit : Effect.andThen(Effect.sleep(options.delay), commit)
      })

    return {
      sink,
      chunks: () => chunks,
      text: () => chunks.map((c) => decoder.decode(c)).join(""),
      attempts: () => attempts,
      awaitWrites: (n) =>
        Effect.suspend(() => {
          if (chunks.length >= n) return Effect.void
          const done = Deferred.makeUnsafe<void>()
          waiters.push({ n, done })
          return Deferred.await(done)
        }),
      awaitFault: Deferred.await(fault)
    }
  })
