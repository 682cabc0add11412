/**
 * The recorder: what a resumable stream's producer writes to. Each event is
 * validated, checked against the stream's bounds and appended to the
 * stream's log, which assigns its id (`<epoch>-<seq>`).
 *
 * - An invalid event (or one that carries its own `id`, or uses the end
 *   marker's type) fails the `send` with `InvalidEventError`; nothing of it
 *   is recorded.
 * - An event beyond `maxEvents` or `maxBytes` is not recorded: the stream
 *   ends as `failed` with a message naming the bound, and the producer is
 *   interrupted (its finalizers run).
 * - A log that cannot record (a remote log that failed) ends the stream the
 *   same way: an event whose append failed may or may not be in the record,
 *   so the stream cannot go on as if nothing happened.
 *
 * Appends do not wait for clients: the record is the buffer, bounded by the
 * stream's limits, which is what lets a producer outlive its clients.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Log from "../../Log.ts"
import type { Event } from "../../SseEvent.ts"
import { InvalidEventError } from "../../SseEvent.ts"
import { utf8Length } from "../bytes.ts"
import { eventFieldsText } from "../encoder.ts"
import { markerEvent } from "./marker.ts"
import { type End, failed } from "./model.ts"

/** @internal */
export interface Limits {
  readonly maxEvents: number
  readonly maxBytes: number
}

/** What the producer sees. @internal */
export interface Sender {
  readonly send: (event: Event) => Effect.Effect<void, InvalidEventError>
  readonly sendAll: (events: Iterable<Event>) => Effect.Effect<void, InvalidEventError>
}

const encode = (event: Event): string | InvalidEventError => {
  if (event.id !== undefined) {
    return new InvalidEventError({ field: "id", reason: "a resumable stream assigns its events' ids itself" })
  }
  if (event.event === markerEvent) {
    return new InvalidEventError({ field: "event", reason: `${markerEvent} is reserved for the end of the stream` })
  }
  return eventFieldsText(event.data, event.event, undefined, event.retry)
}

/** Events per append of a remote log (one round trip each). */
const batch = 512

/** @internal */
export class Recorder {
  events = 0
  bytes = 0
  private readonly log: Log.Log
  private readonly limits: Limits
  private readonly breach: (end: End) => void

  /** `breach` is told why the stream must end before the producer is interrupted. */
  constructor(log: Log.Log, limits: Limits, breach: (end: End) => void) {
    this.log = log
    this.limits = limits
    this.breach = breach
  }

  /** Records events in order; stops at the first invalid one (those before it are recorded). */
  readonly append = (events: ReadonlyArray<Event>): Effect.Effect<void, InvalidEventError> =>
    Effect.suspend(() => {
      const fields: Array<string> = []
      let invalid: InvalidEventError | undefined
      let over: End | undefined
      let bytes = this.bytes
      for (const event of events) {
        const text = encode(event)
        if (typeof text !== "string") {
          invalid = text
          break
        }
        const size = utf8Length(text)
        if (this.events + fields.length + 1 > this.limits.maxEvents) {
          over = failed(`the stream reached its limit of ${this.limits.maxEvents} events`)
          break
        }
        if (bytes + size > this.limits.maxBytes) {
          over = failed(`the stream reached its limit of ${this.limits.maxBytes} bytes`)
          break
        }
        bytes += size
        fields.push(text)
      }
      const after: Effect.Effect<void, InvalidEventError> = over !== undefined
        ? Effect.suspend(() => {
          this.breach(over)
          return Effect.interrupt
        })
        : invalid !== undefined
        ? Effect.fail(invalid)
        : Effect.void
      return fields.length === 0 ? after : Effect.andThen(this.record(fields, bytes), after)
    })

  readonly sender: Sender = {
    send: (event) => this.append([event]),
    sendAll: (events) => this.append(Array.isArray(events) ? events : Array.from(events))
  }

  private record(fields: ReadonlyArray<string>, bytes: number): Effect.Effect<void> {
    const sync = this.log.synchronous
    if (sync !== undefined) {
      return Effect.sync(() => {
        for (let i = 0; i < fields.length; i++) sync.append(fields[i]!, undefined)
        this.events += fields.length
        this.bytes = bytes
      })
    }
    const appendFrom = (from: number): Effect.Effect<void> => {
      if (from >= fields.length) return Effect.void
      const slice = fields.slice(from, from + batch).map((f) => ({ fields: f, id: undefined }))
      return Effect.matchEffect(this.log.append(slice), {
        onFailure: () =>
          Effect.suspend(() => {
            this.breach(failed("the stream's record could not be written"))
            return Effect.interrupt
          }),
        onSuccess: () =>
          Effect.suspend(() => {
            this.events += slice.length
            return appendFrom(from + batch)
          })
      })
    }
    return Effect.andThen(
      appendFrom(0),
      Effect.sync(() => {
        this.bytes = bytes
      })
    )
  }
}
