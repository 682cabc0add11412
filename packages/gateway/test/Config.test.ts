import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Config from "../src/Config.ts"

const run = (argv: Array<string>, env: Record<string, string> = {}) => {
  const parsed = Config.parse(argv, env)
  if (Result.isFailure(parsed)) throw parsed.failure
  if (parsed.success._tag !== "Run") throw new Error("expected a configuration")
  return parsed.success.config
}

const refused = (argv: Array<string>, env: Record<string, string> = {}) => {
  const parsed = Config.parse(argv, env)
  if (Result.isSuccess(parsed)) throw new Error("expected a refusal")
  return parsed.failure.message
}

describe("Config", () => {
  it("defaults: port 8090 on 127.0.0.1, no callback, no secret, no Redis", () => {
    expect(run([])).toMatchObject({
      port: 8090,
      host: "127.0.0.1",
      callbackUrl: undefined,
      secret: undefined,
      redisUrl: undefined,
      callbackTimeoutMs: 5_000,
      routes: ["/sse/:key"]
    })
  })

  it("the topic coalescing window: 2 ms by default, a duration, or off", () => {
    expect(run([]).coalesceMs).toBe(2)
    expect(run([], { GATEWAY_COALESCE: "5ms" }).coalesceMs).toBe(5)
    expect(run(["--coalesce=off"], { GATEWAY_COALESCE: "5ms" }).coalesceMs).toBe(false)
    expect(refused(["--coalesce=soon"])).toMatch(/coalesce/)
  })

  it("environment variables, and flags over them", () => {
    const env = {
      PORT: "9000",
      HOST: "0.0.0.0",
      GATEWAY_CALLBACK_URL: "http://app:5000/cb",
      GATEWAY_SECRET: "s",
      GATEWAY_ROUTES: "/sse/tasks/:key/stream, /sse/jobs/:id",
      GATEWAY_JWT_SECRET: "x".repeat(32),
      GATEWAY_CALLBACK_TIMEOUT: "2s",
      REDIS_URL: "redis://r:6379"
    }
    expect(run([], env)).toMatchObject({
      port: 9000,
      host: "0.0.0.0",
      callbackUrl: "http://app:5000/cb",
      secret: "s",
      routes: ["/sse/tasks/:key/stream", "/sse/jobs/:id"],
      callbackTimeoutMs: 2_000,
      redisUrl: "redis://r:6379",
      redisPrefix: "sluice-gateway",
      redisLeaseMs: 10_000
    })
    expect(run(["--port", "9100", "--callback-timeout=250ms"], env)).toMatchObject({
      port: 9100,
      callbackTimeoutMs: 250
    })
  })

  it("values that cannot work are refused, naming the option", () => {
    expect(refused([], { PORT: "http" })).toMatch(/PORT \(--port\)/)
    expect(refused(["--routes", "/sse/tasks"])).toMatch(/:key/)
    expect(refused(["--callback-url", "ftp://x"])).toMatch(/--callback-url/)
    expect(refused(["--heartbeat", "often"])).toMatch(/--heartbeat/)
    expect(refused(["--jwt-secret", "short"])).toMatch(/32 bytes/)
    expect(refused(["--nope", "1"])).toMatch(/--nope/)
    expect(refused(["--port"])).toMatch(/missing/)
    expect(refused([], { REDIS_URL: "localhost:6379" })).toMatch(/REDIS_URL \(--redis-url\)/)
    expect(refused(["--redis-lease", "500ms"])).toMatch(/--redis-lease/)
    expect(refused(["--redis-prefix", "a b"])).toMatch(/--redis-prefix/)
  })

  it("--help lists every option", () => {
    expect(Result.getOrThrow(Config.parse(["--help"], {}))).toEqual({ _tag: "Help" })
    const help = Config.help()
    for (const spec of Object.values(Config.options)) expect(help).toContain(`--${spec.flag}`)
  })
})
