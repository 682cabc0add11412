import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Registry, SseEvent } from "../src/index.ts"
import { TestSink } from "../src/testing.ts"

describe("Registry.fromBackend", () => {
  it.effect("send, connect and disconnect go to the backend; the counters are its own", () =>
    Effect.gen(function*() {
      const local = yield* Registry.make()
      const calls: Array<string> = []
      const registry = Registry.fromBackend({
        send: (key, event, options) => {
          calls.push(`send ${key} ${options.terminal ?? "-"}`)
          return Registry.send(local, key, event, options)
        },
        connect: (key, options) => {
          calls.push(`connect ${key}`)
          return Registry.connect(local, key, options)
        },
        disconnect: (key, reason) => {
          calls.push(`disconnect ${key} ${reason}`)
          return Effect.fail(
            new Registry.RegistryUnavailableError({ key, operation: "disconnect", reason: "redis is down" })
          )
        },
        isLive: () => true,
        pendingCount: () => 7,
        stats: local.stats
      })
      expect(yield* Registry.send(registry, "k", SseEvent.data("a"))).toBe("pending")
      const sink = yield* TestSink.make()
      yield* Registry.connect(registry, "k", { sink: sink.sink, heartbeat: false })
      yield* Registry.send(registry, "k", SseEvent.data("b"), { terminal: "done" })
      const failed = yield* Effect.flip(Registry.disconnect(registry, "k", "bye"))
      expect(failed.message).toBe("cannot disconnect key \"k\": redis is down")
      expect(calls).toEqual(["send k -", "connect k", "send k done", "disconnect k bye"])
      expect([registry.isLive("x"), registry.pendingCount("x")]).toEqual([true, 7])
    }).pipe(Effect.scoped))
})
