/**
 * Heartbeat events (instead of comments): a fiber per stream that offers one
 * every interval while the connection accepts, skipped when the mailbox is
 * full.
 *
 * @internal
 */
import type { Connection } from "@sluice/core"
import { SseEncoder, SseEvent } from "@sluice/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type * as SseResponse from "../SseResponse.ts"

/** @internal */
export type HeartbeatEvents = (connection: Connection.Connection) => Effect.Effect<void>

/** `undefined` when the route sends heartbeat comments (or none). @internal */
export const resolve = (
  option: boolean | SseResponse.HeartbeatEventOptions | undefined,
  interval: Duration.Duration | false | undefined
): HeartbeatEvents | undefined => {
  if (option === undefined || option === false || interval === false) return undefined
  const options = option === true ? {} : option
  const event = options.event ?? "heartbeat"
  const checked = SseEncoder.encodeText(SseEvent.make({ event, data: "" }))
  if (Result.isFailure(checked)) {
    throw new SseEvent.InvalidEventError({ field: "event", reason: `heartbeatEvent.event: ${checked.failure.reason}` })
  }
  const data = options.data ?? (({ timestamp }) => ({ timestamp: timestamp.toISOString() }))
  const every = interval ?? Duration.seconds(15)
  const beat = (connection: Connection.Connection) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      let json: string | undefined
      try {
        json = JSON.stringify(data({ timestamp: new Date(now) }))
      } catch {
        json = undefined
      }
      // Data that JSON cannot carry costs this heartbeat only.
      if (typeof json !== "string") return
      const bytes = SseEncoder.encodeResult(SseEvent.make({ event, data: json }))
      if (Result.isSuccess(bytes)) connection.offerUnsafe(bytes.success)
    })
  return (connection) =>
    Effect.gen(function*() {
      while (connection.accepting()) {
        yield* Effect.sleep(every)
        if (!connection.accepting()) return
        yield* beat(connection)
      }
    })
}
