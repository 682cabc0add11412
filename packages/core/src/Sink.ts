/**
 * Where a connection's bytes go: the HTTP response in production, anything in
 * tests.
 *
 * A sink is a function from one chunk of SSE wire bytes to an effect that
 * completes when the chunk has been handed to the transport (for a socket:
 * accepted by the kernel or buffered below its high-water mark). A sink that
 * fails tells the connection the client is gone; a sink that never completes is
 * caught by the connection's write timeout.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"

/**
 * Writes one chunk. The connection never calls it concurrently with itself,
 * and hands it whole frames only (a chunk is one or more complete frames).
 *
 * A sink may also carry `tryWrite`: a synchronous write that the connection
 * uses when the transport can take the chunk at once (below its high-water
 * mark), without resuming the writer fiber. It returns `false`, having
 * written nothing, whenever the chunk would have to wait or the transport is
 * gone; the connection then uses the effectful write, which waits or fails.
 * Transports that write to memory (a Node stream's buffer) gain the most:
 * a broadcast then costs no fiber wake-up per subscriber.
 *
 * @since 0.1.0
 * @category models
 */
export type Sink = ((chunk: Uint8Array) => Effect.Effect<void, WriteError>) & {
  readonly tryWrite?: ((chunk: Uint8Array) => boolean) | undefined
}

/**
 * Adds a synchronous fast path to a sink (see {@link Sink}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sink } from "@sluice/core"
 *
 * // An in-memory sink that can always take a chunk at once.
 * const chunks: Array<Uint8Array> = []
 * const sink = Sink.withTryWrite(
 *   (chunk) => Effect.sync(() => void chunks.push(chunk)),
 *   (chunk) => {
 *     chunks.push(chunk)
 *     return true
 *   }
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const withTryWrite = (
  write: (chunk: Uint8Array) => Effect.Effect<void, WriteError>,
  tryWrite: (chunk: Uint8Array) => boolean
): Sink => Object.assign((chunk: Uint8Array) => write(chunk), { tryWrite })

/**
 * Why a write did not happen.
 *
 * - `failed`: the transport reported an error (socket reset, broken pipe).
 * - `closed`: the peer closed the stream before or during the write.
 * - `timeout`: the write did not complete within the connection's write
 *   timeout (a half-open or stalled client).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Sink } from "@sluice/core"
 *
 * // A sink over a socket that may be gone.
 * const sink = (socket: { readonly destroyed: boolean; write: (chunk: Uint8Array) => void }): Sink.Sink => (chunk) =>
 *   socket.destroyed
 *     ? Effect.fail(new Sink.WriteError({ reason: "closed", detail: "the socket is closed" }))
 *     : Effect.sync(() => socket.write(chunk))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteError extends Data.TaggedError("WriteError")<{
  readonly reason: "failed" | "closed" | "timeout"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `write ${this.reason}: ${this.detail}`
  }
}
