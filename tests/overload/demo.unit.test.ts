// The demo's own bounded structures, in process: the chat's prompt cut, the
// rate limiter's buckets, and the task ids it forgets.
import { describe, expect, it } from "@effect/vitest"
import { Registry } from "@sluice/core"
import { TestSink } from "@sluice/core/testing"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { truncate } from "../../packages/examples/src/demo/chat.ts"
import * as RateLimit from "../../packages/examples/src/demo/rateLimit.ts"
import { Tasks } from "../../packages/examples/src/demo/tasks.ts"

describe("demo internals", () => {
  it("the chat cuts prompts between characters as a reader counts them, never inside a surrogate pair", () => {
    const emoji = `${"a".repeat(79)}😀b`
    expect(emoji.slice(0, 80)).toMatch(/\uD83D$/) // what the old code sent
    expect(truncate(emoji, 80)).toBe("a".repeat(79) + "😀")
    expect(truncate("👩‍👩‍👧 family", 1)).toBe("👩‍👩‍👧")
    expect(truncate("e\u0301x", 1)).toBe("e\u0301")
    expect(truncate("short", 80)).toBe("short")
  })

  it("the rate limiter refills over time and keeps a bounded map of clients", () => {
    let now = 0
    const limit = RateLimit.make(2, 3, () => now)
    const taken = Array.from({ length: 10 }, () => limit.take("a"))
    expect(taken.filter((t) => t === undefined).length).toBe(8)
    expect(taken.at(-1)).toBe(1)
    now += 1_000
    expect(limit.take("a")).toBe(undefined)
    expect(limit.take("b")).toBe(undefined)
    expect(limit.take("c")).toBe(undefined)
    // The map is full of clients that are not quiet: a fourth is refused, not added.
    expect(limit.take("d")).toBe(1)
    expect(limit.size()).toBe(3)
    // Quiet clients are forgotten to make room.
    now += 60_000
    expect(limit.take("d")).toBe(undefined)
    expect(limit.size()).toBe(1)
    expect(RateLimit.make(0).take("x")).toBe(undefined)
  })

  it.effect("finished task ids are forgotten with their outcome; a client's running tasks are capped", () =>
    Effect.gen(function*() {
      const tasks = yield* Tasks
      const id = yield* tasks.start({ steps: 1, stepMs: 10 }, "client-a")
      yield* tasks.start({ steps: 1, stepMs: 10 }, "client-a")
      const third = yield* Effect.flip(tasks.start({ steps: 1, stepMs: 10 }, "client-a"))
      expect(third._tag).toBe("TooManyTasksError")
      yield* TestClock.adjust("1 second")
      expect(yield* tasks.running).toBe(0)
      expect(yield* tasks.known).toBe(2)
      // The client may start again once its tasks ended.
      yield* tasks.start({ steps: 1, stepMs: 10 }, "client-a")
      yield* TestClock.adjust("9 minutes")
      expect(yield* tasks.known).toBe(3)
      yield* TestClock.adjust("2 minutes")
      expect(yield* tasks.known).toBe(0)
      // A forgotten id is unknown again.
      const sink = yield* TestSink.make()
      const refused = yield* Effect.flip(Registry.connect(tasks.registry, id, { sink: sink.sink, heartbeat: false }))
      expect(refused._tag).toBe("UnknownKeyError")
    }).pipe(Effect.provide(Tasks.layer({ maxPerClient: 2, pendingBytes: 1024 * 1024 }))))
})
