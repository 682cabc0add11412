/**
 * The `sluice-gateway` executable as a process: --help, refused options,
 * REDIS_URL without a server, structured logs, and a graceful stop on SIGTERM.
 */
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { RedisServer } from "@sluice/redis/testing"
import { Effect } from "effect"
import { options } from "../src/Config.ts"
import { request, startBackend } from "./support/backend.ts"
import { events, json, secret } from "./support/gateway.ts"
import { runToEnd, startProcess } from "./support/process.ts"

describe("sluice-gateway (the process)", () => {
  it.live("--help documents every option with its environment variable and default, and exits 0", () =>
    Effect.gen(function*() {
      const run = yield* runToEnd(["--help"])
      expect(run.code).toBe(0)
      for (const spec of Object.values(options)) {
        expect(run.stdout).toContain(`--${spec.flag}`)
        if (spec.env !== undefined) expect(run.stdout).toContain(`[${spec.env}]`)
        expect(run.stdout).toContain(spec.help)
      }
    }))

  it.live("an unknown option or a value that cannot work exits 2 naming it", () =>
    Effect.gen(function*() {
      const unknown = yield* runToEnd(["--colour", "red"])
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toMatch(/--colour/)
      const port = yield* runToEnd([], { PORT: "eighty" })
      expect(port.code).toBe(2)
      expect(port.stderr).toMatch(/PORT \(--port\)/)
    }))

  it.live("REDIS_URL pointing at no server: the gateway exits 1 at start, naming the address", () =>
    Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      yield* redis.kill
      const run = yield* runToEnd(["--port", "0"], { REDIS_URL: redis.url })
      expect(run.code).toBe(1)
      expect(run.stdout + run.stderr).toContain(`Redis at ${redis.url} is unavailable (connect)`)
      const invalid = yield* runToEnd(["--port", "0"], { REDIS_URL: "http://127.0.0.1:6379" })
      expect(invalid.code).toBe(2)
      expect(invalid.stderr).toMatch(/REDIS_URL \(--redis-url\): expected a redis:\/\/ or rediss:\/\/ URL/)
    }))

  it.live(
    "SIGTERM: every stream gets connection_close shutdown, the app its disconnects, exit code 0",
    () =>
      Effect.gen(function*() {
        const backend = yield* startBackend
        const gateway = yield* startProcess([], {
          GATEWAY_CALLBACK_URL: `${backend.url}/callback`,
          GATEWAY_SECRET: secret,
          GATEWAY_ROUTES: "/sse/tasks/:key/stream",
          // A busy test machine must not turn the test's clients away.
          GATEWAY_MAX_EVENT_LOOP_DELAY: "off"
        })
        yield* backend.post("/control", { gateway_url: `http://127.0.0.1:${gateway.port}`, secret })
        yield* backend.post("/tasks", { id: "t1" })
        const health = yield* request(`http://127.0.0.1:${gateway.port}/health`)
        expect(health.json).toMatchObject({ status: "ok" })
        const keyed = yield* TestClient.open(gateway.port, "/sse/tasks/t1/stream", { "x-correlation-id": "c-1" })
        const topic = yield* TestClient.open(gateway.port, "/subscribe?topic=news")
        yield* keyed.awaitFrames(2)
        yield* topic.awaitFrames(2)
        expect(yield* gateway.stop("SIGTERM")).toBe(0)
        yield* keyed.ended
        yield* topic.ended
        for (const client of [keyed, topic]) {
          const last = events(client).at(-1)!
          expect(last.event).toBe("connection_close")
          expect(json(last.data)).toMatchObject({ reason: "shutdown" })
        }
        const [disconnect] = yield* backend.log("disconnect", 1)
        expect(disconnect).toMatchObject({ key: "t1", reason: "shutdown", correlation_id: "c-1" })
        // Structured logs: one JSON object per line.
        const lines = gateway.output().trim().split("\n")
        for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
        expect(lines.map((l) => JSON.parse(l).message)).toEqual(expect.arrayContaining(["listening", "stopped"]))
      }),
    { timeout: 60_000 }
  )
})
