/**
 * Values the `Log` module shares with the logs that implement it (here and in
 * other packages): the type id and the error. The public module re-exports
 * them.
 *
 * @internal
 */
import * as Data from "effect/Data"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@sluice/core/Log") as never

/** @internal */
export class LogError extends Data.TaggedError("LogError")<{
  /** The log's name (a topic). */
  readonly log: string
  /** What failed. */
  readonly operation: "open" | "append" | "read"
  /** Why, in words: the address that did not answer, the timeout that passed. */
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `log ${JSON.stringify(this.log)}: ${this.operation} failed: ${this.reason}`
  }
}
