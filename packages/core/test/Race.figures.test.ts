import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Race } from "../src/testing.ts"
import * as Bugs from "./support/bugs.ts"

// How many runs each strategy needs to find each of the five bugs (seed 1,
// default options). Runs are deterministic, so these are exact; docs/testing.md
// quotes them, and this test keeps the page honest (a change to the kit or to
// effect that moves them must update the page). `undefined`: not found within
// the cap.

const cap = { random: 300, pct: 300, exhaustive: 500 } as const

const bugs = [
  { bug: "1. drain leak", program: Bugs.drainLeak(false), invariant: undefined },
  { bug: "2a. lost update", program: Bugs.lostUpdate(false), invariant: (n: number) => n === 2 },
  { bug: "2b. check-then-act", program: Bugs.lazyInit(false), invariant: (n: number) => n === 1 },
  {
    bug: "3. ring buffer overrun",
    program: Bugs.ringBuffer(false),
    invariant: (got: ReadonlyArray<number>) => Bugs.ringBufferOk(got)
  },
  { bug: "4. deadlock", program: Bugs.deadlock, invariant: undefined },
  {
    bug: "5. done while buffered",
    program: Bugs.doneWhileBuffered(false),
    invariant: (seen: ReadonlyArray<number>) => seen.length === 3
  }
] as const

const expected: Record<string, Record<keyof typeof cap, number | undefined>> = {
  "1. drain leak": { random: 1, pct: 1, exhaustive: 1 },
  "2a. lost update": { random: 20, pct: 5, exhaustive: 62 },
  "2b. check-then-act": { random: 7, pct: 5, exhaustive: 56 },
  "3. ring buffer overrun": { random: undefined, pct: 1, exhaustive: undefined },
  "4. deadlock": { random: 1, pct: 1, exhaustive: 1 },
  "5. done while buffered": { random: 1, pct: 1, exhaustive: 1 }
}

describe("Race: runs needed to find each bug", () => {
  it.effect("random, PCT and exhaustive search, seed 1", () =>
    Effect.gen(function*() {
      const found: Record<string, Record<string, number | undefined>> = {}
      for (const { bug, invariant, program } of bugs) {
        found[bug] = {}
        for (const strategy of ["random", "pct", "exhaustive"] as const) {
          const exit = yield* Effect.flip(
            Race.check(program as Effect.Effect<unknown>, {
              strategy,
              runs: cap[strategy],
              seed: 1,
              shrink: false,
              invariant: invariant as ((value: unknown) => boolean) | undefined
            })
          ).pipe(Effect.option)
          found[bug]![strategy] = exit._tag === "Some" && exit.value._tag === "RaceError" ? exit.value.run : undefined
        }
      }
      console.table(found)
      expect(found).toEqual(expected)
    }), 60_000)
})
