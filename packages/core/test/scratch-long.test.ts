import { it } from "@effect/vitest"
import { Effect } from "effect"
import { Race } from "../src/testing.ts"
import * as Bugs from "./support/bugs.ts"
it.effect("long", () => Effect.gen(function*() {
  for (const [strategy, runs] of [["random", 3000], ["exhaustive", 5000]] as const) {
    const t = Date.now()
    const r = yield* Effect.result(Race.check(Bugs.ringBuffer(false), { strategy, runs, shrink: false, invariant: (g) => Bugs.ringBufferOk(g) }))
    console.log(strategy, r._tag === "Failure" && r.failure._tag === "RaceError" ? r.failure.run : JSON.stringify(r), Date.now() - t)
  }
  for (const seed of [2, 3, 4, 5, 6]) {
    const r = yield* Effect.result(Race.check(Bugs.ringBuffer(false), { strategy: "pct", seed, runs: 50, shrink: false, invariant: (g) => Bugs.ringBufferOk(g) }))
    console.log("pct seed", seed, r._tag === "Failure" && r.failure._tag === "RaceError" ? r.failure.run : "none")
  }
}), 300000)
