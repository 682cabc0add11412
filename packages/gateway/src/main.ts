#!/usr/bin/env node
/**
 * The `sluice-gateway` executable: reads the configuration (flags, then
 * environment variables), prints `--help`, or runs the gateway until SIGINT
 * or SIGTERM.
 *
 * - Logs are structured: one JSON object per line on stdout (or `pretty`).
 *   The first line says where it listens: `{"message":"listening",…,"url":…}`.
 * - A stop asked for by a signal is a normal stop: every stream gets
 *   `connection_close` with reason `shutdown`, the disconnect callbacks are
 *   sent, and the process exits with code 0.
 * - An invalid option, or a port that cannot be bound, is logged and exits
 *   with code 1 (2 for an invalid option).
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Runtime from "effect/Runtime"
import * as Config from "./Config.ts"
import * as Gateway from "./Gateway.ts"

const command = Config.parse(process.argv.slice(2), process.env)

if (Result.isFailure(command)) {
  process.stderr.write(`sluice-gateway: ${command.failure.message}\n`)
  process.exit(2)
} else if (command.success._tag === "Help") {
  process.stdout.write(`${Config.help()}\n`)
} else {
  const config = command.success.config
  const logging = Layer.mergeAll(
    Logger.layer([config.logFormat === "json" ? Logger.consoleJson : Logger.consolePretty()]),
    Layer.succeed(References.MinimumLogLevel, config.logLevel)
  )
  const program = Effect.gen(function*() {
    const { port } = yield* Gateway.start(config)
    yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({
      url: `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`,
      port,
      routes: config.routes.join(","),
      callback_url: config.callbackUrl ?? "none",
      topics_auth: config.jwtSecret !== undefined || config.jwtPublicKey !== undefined ? "jwt" : "open"
    }))
    if (config.secret === undefined) {
      yield* Effect.logWarning("GATEWAY_SECRET is not set: /internal/send refuses every request")
    }
    yield* Effect.addFinalizer(() => Effect.logInfo("stopped"))
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.tapCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.void
        : Effect.logError("the gateway stopped on an error").pipe(Effect.annotateLogs({ error: Cause.pretty(cause) }))
    ),
    Effect.provide(logging)
  )
  NodeRuntime.runMain(program, {
    disableErrorReporting: true,
    teardown: (exit, onExit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
  })
}
