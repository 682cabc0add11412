import { TestClient } from "@sluice/http/testing"
import { Effect, type Scope } from "effect"
import { type Config, defaults } from "../../src/Config.ts"
import * as Gateway from "../../src/Gateway.ts"

export const secret = "test-secret-0123456789"

/** The gateway in this process, on a free port, for the test's scope. */
export const startGateway = (overrides: Partial<Config> = {}): Effect.Effect<Gateway.Started, never, Scope.Scope> =>
  // Admission by load is off: a busy test machine must not turn test clients away.
  Gateway.start({ ...defaults, port: 0, secret, heartbeatMs: false, maxEventLoopDelayMs: false, ...overrides }).pipe(
    Effect.orDie
  )

/** The events of a client, without the `retry:` hints. */
export const events = (client: TestClient.Client) => client.events().filter((e) => e.retry === undefined)

export const json = (data: string) => JSON.parse(data)
