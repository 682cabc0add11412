/**
 * The hub's identity and errors, shared by the `Hub` module (which
 * re-exports and documents them) and the internal modules that raise them.
 *
 * @internal
 */
import * as Data from "effect/Data"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@sluice/core/Hub") as never

/** @internal */
export class SlowConsumerError extends Data.TaggedError("SlowConsumerError")<{
  readonly subscriber: string
  readonly strategy: "disconnect" | "suspend"
  readonly capacity: number
  /** Under `suspend`: how long the publisher waited, in milliseconds. */
  readonly waitedMillis?: number | undefined
}> {
  override get message(): string {
    return this.strategy === "disconnect"
      ? `subscriber ${this.subscriber} could not keep up: its mailbox of ${this.capacity} was full`
      : `subscriber ${this.subscriber} could not keep up: its mailbox of ${this.capacity} stayed full for ${this.waitedMillis} ms`
  }
}

/** @internal */
export class PayloadTooLargeError extends Data.TaggedError("PayloadTooLargeError")<{
  /** Encoded size in bytes (for very large data: a lower bound, measured without encoding). */
  readonly size: number
  readonly max: number
}> {
  override get message(): string {
    return `event of ${this.size} bytes exceeds the maximum of ${this.max}`
  }
}

/** @internal */
export class EventNotAllowedError extends Data.TaggedError("EventNotAllowedError")<{
  readonly event: string
}> {
  override get message(): string {
    return `event type ${JSON.stringify(this.event)} is not allowed on this hub`
  }
}

/** @internal */
export class UnserializableDataError extends Data.TaggedError("UnserializableDataError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot serialize event data: ${this.reason}`
  }
}

/** @internal */
export class WouldBlockError extends Data.TaggedError("WouldBlockError")<{
  readonly subscribers: number
  /**
   * Why a plain call cannot publish: `suspend` (a subscriber could make
   * it wait; the default) or `asynchronous-log` (the hub's record is remote).
   */
  readonly reason?: "suspend" | "asynchronous-log" | undefined
}> {
  override get message(): string {
    return this.reason === "asynchronous-log"
      ? "the hub's log is remote (an append is a round trip): publish with Hub.publish, which can wait"
      : `the hub has ${this.subscribers} subscriber(s) under the suspend strategy: publish with Hub.publish, which can wait`
  }
}
