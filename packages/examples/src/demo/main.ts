/**
 * `pnpm demo`: the demo server on 127.0.0.1 (PORT, default 8080). Stops on
 * SIGINT/SIGTERM; open streams get `connection_close` with reason `shutdown`,
 * and a stop asked for by a signal exits with code 0 (it is the normal way
 * to stop a server, not a failure).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Exit, Layer, Runtime } from "effect"
import { layer } from "./server.ts"

const env = process.env
layer({
  port: Number(env["PORT"] ?? 8080),
  host: env["HOST"] ?? "127.0.0.1",
  heartbeatMs: Number(env["HEARTBEAT_MS"] ?? 5_000),
  env
}).pipe(
  Layer.launch,
  NodeRuntime.runMain({
    teardown: (exit, onExit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
  })
)
