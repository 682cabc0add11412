import { it } from "@effect/vitest"
import { Effect } from "effect"
import { Bubble, Race } from "../src/testing.ts"
import * as Bugs from "./support/bugs.ts"
it.effect("docs", () => Effect.gen(function*() {
  console.log("=== 1\n" + (yield* Effect.flip(Bubble.run(Bugs.drainLeak(false), { forkSites: true }))).message)
  console.log("=== 2a\n" + (yield* Effect.flip(Race.check(Bugs.lostUpdate(false), { invariant: (n) => n === 2 }))).message)
  console.log("=== 2b\n" + (yield* Effect.flip(Race.check(Bugs.lazyInit(false), { strategy: "pct", invariant: (n) => n === 1 }))).message)
  console.log("=== 3\n" + (yield* Effect.flip(Race.check(Bugs.ringBuffer(false), { strategy: "pct", invariant: (g) => Bugs.ringBufferOk(g) }))).message)
  console.log("=== 4\n" + (yield* Effect.flip(Bubble.run(Bugs.deadlock))).message)
  console.log("=== 5\n" + (yield* Effect.flip(Race.check(Bugs.doneWhileBuffered(false), { invariant: (g) => g.length === 3 }))).message)
  console.log("=== 5 fixed\n" + JSON.stringify(yield* Race.check(Bugs.doneWhileBuffered(true), { strategy: Race.exhaustive({ preemptionBound: 1 }), invariant: (g) => g.length === 3 })))
}))
