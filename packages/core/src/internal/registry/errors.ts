/**
 * The registry's identity, its errors and the bookkeeping it counts per
 * waiting event: values shared by the `Registry` module (which re-exports
 * and documents them) and the internal modules that raise or use them.
 *
 * @internal
 */
import * as Data from "effect/Data"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@sluice/core/Registry") as never

/** Bytes of bookkeeping counted per waiting event (see `Registry.pendingEventOverhead`). @internal */
export const pendingEventOverhead = 192

/** @internal */
export class UnknownKeyError extends Data.TaggedError("UnknownKeyError")<{ readonly key: string }> {
  override get message(): string {
    return `unknown key ${JSON.stringify(this.key)}`
  }
}

/** @internal */
export class KeyClosedError extends Data.TaggedError("KeyClosedError")<{
  readonly key: string
  readonly reason: string
}> {
  override get message(): string {
    return `key ${JSON.stringify(this.key)} was closed (${this.reason}); no event is sent after a terminal event`
  }
}

/** @internal */
export class PendingFullError extends Data.TaggedError("PendingFullError")<{
  readonly key: string
  readonly capacity: number
}> {
  override get message(): string {
    return `key ${JSON.stringify(this.key)} already has ${this.capacity} events waiting`
  }
}

/** @internal */
export class PendingBudgetError extends Data.TaggedError("PendingBudgetError")<{
  readonly key: string
  readonly maxBytes: number
  readonly pendingBytes: number
}> {
  override get message(): string {
    return `the event for key ${
      JSON.stringify(this.key)
    } was refused: waiting events already hold ${this.pendingBytes} of the registry's ${this.maxBytes}-byte budget`
  }
}

/** @internal */
export class TooManyKeysError extends Data.TaggedError("TooManyKeysError")<{ readonly maxKeys: number }> {
  override get message(): string {
    return `the registry already holds ${this.maxKeys} keys`
  }
}

/** @internal */
export class RegistryUnavailableError extends Data.TaggedError("RegistryUnavailableError")<{
  readonly key: string
  readonly operation: "send" | "connect" | "disconnect"
  /** Why, in words, naming the unreachable address. */
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot ${this.operation} key ${JSON.stringify(this.key)}: ${this.reason}`
  }
}
