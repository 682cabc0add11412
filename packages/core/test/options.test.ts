import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { Connection, Hub, Registry, Topics } from "../src/index.ts"

// Settings that cannot work are reported when the thing is made, naming the
// option, instead of becoming NaN (a mailbox that never has room, a limit
// that never applies).
const defectMessage = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "succeeded"
  const defect = Cause.squash(exit.cause)
  return defect instanceof RangeError ? defect.message : `not a RangeError: ${String(defect)}`
}

describe("options that cannot work", () => {
  it.effect("Connection.make: a capacity that is not a number of frames", () =>
    Effect.gen(function*() {
      for (const capacity of [Number.NaN, 0, Infinity]) {
        const exit = yield* Effect.exit(Effect.scoped(Connection.make({ sink: () => Effect.void, capacity })))
        expect(defectMessage(exit)).toBe(
          `Connection.make: invalid capacity (a finite number of frames, at least 1) (got ${capacity})`
        )
      }
    }))

  it.effect("Hub.make: history limits that are not numbers, or both unlimited; a maxEventBytes below 1", () =>
    Effect.gen(function*() {
      expect(defectMessage(yield* Effect.exit(Hub.make({ history: { maxEvents: Number.NaN } })))).toContain(
        "history.maxEvents"
      )
      expect(defectMessage(yield* Effect.exit(Hub.make({ history: { maxEvents: Infinity, maxBytes: Infinity } }))))
        .toContain("cannot both be unlimited")
      expect(defectMessage(yield* Effect.exit(Hub.make({ maxEventBytes: 0 })))).toContain("maxEventBytes")
      // Still fine: a history off, or limited by one of the two.
      yield* Hub.make({ history: { maxEvents: 0 } })
      yield* Hub.make({ history: { maxEvents: Infinity } })
    }))

  it.effect("Registry.make: a pending capacity below 1", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Registry.make({ pending: { capacity: 0 } })))
      expect(defectMessage(exit)).toContain("pending.capacity")
    }))

  it.effect("Topics.make: a maxTopics that is not a number", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Topics.make({ maxTopics: Number.NaN })))
      expect(defectMessage(exit)).toContain("maxTopics")
    }))
})
