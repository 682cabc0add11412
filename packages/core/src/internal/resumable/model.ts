/**
 * Values the `Resumable` and `ResumableCoordinator` modules share (and that
 * coordinators in other packages build): how a stream ended, the states a
 * coordinator keeps, the errors. The public modules re-export them.
 *
 * @internal
 */
import * as Data from "effect/Data"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@sluice/core/Resumable") as never

/** @internal */
export const CoordinatorTypeId: unique symbol = Symbol.for("@sluice/core/ResumableCoordinator") as never

// -----------------------------------------------------------------------------
// How a stream ended

/** @internal */
export type End =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly message: string }
  | { readonly _tag: "Stopped"; readonly reason: string; readonly detached: boolean }
  | { readonly _tag: "Expired" }
  | { readonly _tag: "ProducerLost" }

/** @internal */
export const completed: End = { _tag: "Completed" }
/** @internal */
export const failed = (message: string): End => ({ _tag: "Failed", message })
/** @internal */
export const stopped = (reason: string, detached = false): End => ({ _tag: "Stopped", reason, detached })
/** @internal */
export const expired: End = { _tag: "Expired" }
/** @internal */
export const producerLost: End = { _tag: "ProducerLost" }

/** The five kinds of end, as metrics and logs name them. @internal */
export type EndKind = "completed" | "failed" | "stopped" | "expired" | "producer_lost"

/** @internal */
export const kindOf = (end: End): EndKind => {
  switch (end._tag) {
    case "Completed":
      return "completed"
    case "Failed":
      return "failed"
    case "Stopped":
      return "stopped"
    case "Expired":
      return "expired"
    case "ProducerLost":
      return "producer_lost"
  }
}

/** The reason a client reads in the close event: the kind, or a stop's own reason. @internal */
export const reasonOf = (end: End): string => end._tag === "Stopped" ? end.reason : kindOf(end)

/** What a stop reason may be: snake_case words, as every reason on the wire. @internal */
export const stopReasonPattern = /^[a-z][a-z0-9_]{0,63}$/

// -----------------------------------------------------------------------------
// What a coordinator keeps per stream

/**
 * The bounds of a stream's log, so that every node opens (and appends the
 * end marker to) the record with the bounds its owner chose.
 *
 * @internal
 */
export interface RecordBounds {
  readonly maxEvents: number
  readonly maxBytes: number
  /** Age limit in ms; not finite: none. */
  readonly maxAgeMillis: number
}

/** @internal */
export interface Running {
  readonly _tag: "Running"
  readonly id: string
  /** The node that runs the producer. */
  readonly owner: string
  /** The name of the stream's log (one per start of the id). */
  readonly record: string
  /** Coordinator time (ms) of the claim. */
  readonly startedAt: number
  /** Coordinator time (ms) at which the owner's lease runs out unless renewed. */
  readonly leaseExpiresAt: number
  /** `true` once the lease has run out (read at the coordinator, on its clock). */
  readonly leaseExpired: boolean
  /** A stop asked from anywhere and not carried out yet: its reason. */
  readonly stopRequested: string | undefined
  /** Coordinator time (ms) a client was last known to be attached (the claim counts as one). */
  readonly lastSeenAt: number
  /** How long ago (ms, on the coordinator's clock, when read) a client was last known to be attached. */
  readonly idleMillis: number
  /** The detach policy's grace period in ms, if the stream has one. */
  readonly detachMillis: number | undefined
  /** How long the record is kept after the end (ms). */
  readonly retentionMillis: number
  readonly bounds: RecordBounds
}

/** @internal */
export interface Ended {
  readonly _tag: "Ended"
  readonly id: string
  readonly record: string
  readonly end: End
  /** Coordinator time (ms) of the end. */
  readonly endedAt: number
  readonly bounds: RecordBounds
}

/** @internal */
export type State = Running | Ended

// -----------------------------------------------------------------------------
// Errors

/** @internal */
export class CoordinatorError extends Data.TaggedError("CoordinatorError")<{
  /** What failed. */
  readonly operation: "claim" | "renew" | "touch" | "stop" | "finish" | "get" | "remove"
  /** The stream's id. */
  readonly id: string
  /** Why, in words: the address that did not answer, the timeout that passed. */
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `resumable stream ${JSON.stringify(this.id)}: ${this.operation} failed at the coordinator: ${this.reason}`
  }
}

/** @internal */
export class UnknownStreamError extends Data.TaggedError("UnknownStreamError")<{ readonly id: string }> {
  override get message(): string {
    return `no resumable stream ${
      JSON.stringify(this.id)
    }: it was never started, or its record was deleted after its retention time`
  }
}

/** @internal */
export class StreamLimitError extends Data.TaggedError("StreamLimitError")<{ readonly maxStreams: number }> {
  override get message(): string {
    return `this node already runs ${this.maxStreams} resumable streams (maxStreams); try again when one has ended`
  }
}

/** @internal */
export class InvalidStreamIdError extends Data.TaggedError("InvalidStreamIdError")<{
  readonly id: string
  readonly reason: string
}> {
  override get message(): string {
    return `invalid resumable stream id ${JSON.stringify(this.id.slice(0, 64))}: ${this.reason}`
  }
}

/** @internal */
export class InvalidStopReasonError extends Data.TaggedError("InvalidStopReasonError")<{ readonly reason: string }> {
  override get message(): string {
    return `invalid stop reason ${
      JSON.stringify(this.reason.slice(0, 80))
    }: use 1 to 64 lower-case letters, digits and underscores, starting with a letter`
  }
}

/** Longest stream id. @internal */
export const maxIdLength = 256

/** Why `id` cannot name a stream, if it cannot. @internal */
export const idProblem = (id: string): string | undefined => {
  if (typeof id !== "string" || id.length === 0) return "it is empty"
  if (id.length > maxIdLength) return `it is longer than ${maxIdLength} characters`
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) return "it contains control characters"
  if (!id.isWellFormed()) return "it contains a lone UTF-16 surrogate"
  return undefined
}
