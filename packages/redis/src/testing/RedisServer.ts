/**
 * A real `redis-server` for tests and benchmarks: started on 127.0.0.1 and a
 * free port, without persistence (no RDB snapshot, no AOF), stopped when the
 * scope closes.
 *
 * - **Real faults**: {@link RedisServer.pause} (`SIGSTOP`: the socket stays
 *   open and nothing answers), {@link RedisServer.resume} (`SIGCONT`),
 *   {@link RedisServer.kill} (`SIGKILL`) and {@link RedisServer.start} (a new,
 *   empty server on the same port: what a restart without persistence looks
 *   like to clients).
 * - **Never skipped**: a missing binary is a {@link RedisServerError} that
 *   says how to install it (the test setup installs it with apt-get).
 * - **Bounded**: every wait (start, stop) has a deadline; a server that does
 *   not start fails with its own output attached.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * The server could not be found, started or stopped.
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisServerError extends Data.TaggedError("RedisServerError")<{
  readonly reason: string
  readonly output?: string | undefined
}> {
  override get message(): string {
    return this.output === undefined || this.output === ""
      ? this.reason
      : `${this.reason}\n--- redis-server output ---\n${this.output}`
  }
}

/**
 * A running (or deliberately stopped) server.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Process id of the current server process (`undefined` while killed). */
  readonly pid: () => number | undefined
  /** `SIGSTOP`: connections stay open, nothing is answered until {@link resume}. */
  readonly pause: Effect.Effect<void>
  /** `SIGCONT` after {@link pause}. */
  readonly resume: Effect.Effect<void>
  /** `SIGKILL`, and waits for the exit: every connection drops, all data is gone. */
  readonly kill: Effect.Effect<void, RedisServerError>
  /** Starts a new, empty server on the same port (after {@link kill}). */
  readonly start: Effect.Effect<void, RedisServerError>
  /** {@link kill} then {@link start}: a restart without persistence. */
  readonly restart: Effect.Effect<void, RedisServerError>
  /** What the current process wrote so far. */
  readonly output: () => string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Extra `redis-server` arguments (for example `["--maxmemory", "10mb"]`). */
  readonly args?: ReadonlyArray<string> | undefined
  /** Longest wait for the server to accept connections. Default 10 s. */
  readonly startTimeoutMillis?: number | undefined
}

/**
 * Where `redis-server` is: `$REDIS_SERVER`, a Debian location, or `PATH`.
 * `undefined` when it is not installed.
 *
 * @example
 * ```ts
 * import { RedisServer } from "@sluice/redis/testing"
 *
 * const found = RedisServer.binary() // "/usr/bin/redis-server", or undefined (REDIS_SERVER overrides)
 * ```
 *
 * @since 0.1.0
 * @category finding
 */
export const binary = (): string | undefined => {
  const fromEnv = process.env["REDIS_SERVER"]
  if (fromEnv !== undefined && fromEnv !== "" && existsSync(fromEnv)) return fromEnv
  const dirs = ["/usr/bin", "/usr/sbin", "/usr/local/bin", ...(process.env["PATH"] ?? "").split(Path.delimiter)]
  for (const dir of dirs) {
    if (dir === "") continue
    const candidate = Path.join(dir, "redis-server")
    if (existsSync(candidate)) return candidate
  }
  return undefined
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const ready = /Ready to accept connections/
const portTaken = /Address already in use|bind: /

interface Running {
  readonly child: ChildProcess
  readonly exited: Promise<void>
  output: string
}

const launch = (
  path: string,
  port: number,
  args: ReadonlyArray<string>,
  timeoutMillis: number
): Promise<Running> =>
  new Promise((resolve, reject) => {
    const child = spawn(path, [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      "--dir",
      Os.tmpdir(),
      "--loglevel",
      "notice",
      ...args
    ], { stdio: ["ignore", "pipe", "pipe"] })
    const running: Running = {
      child,
      exited: new Promise((done) => child.once("exit", () => done())),
      output: ""
    }
    let settled = false
    const settle = (error: Error | undefined) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error === undefined) resolve(running)
      else {
        child.kill("SIGKILL")
        reject(error)
      }
    }
    const timer = setTimeout(
      () => settle(new Error(`redis-server did not accept connections on port ${port} within ${timeoutMillis} ms`)),
      timeoutMillis
    )
    const onData = (chunk: Buffer) => {
      running.output += chunk.toString("utf8")
      if (ready.test(running.output)) settle(undefined)
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("error", (error) => settle(error))
    void running.exited.then(() => settle(new Error(`redis-server on port ${port} exited before it was ready`)))
  })

const stopProcess = (running: Running, timeoutMillis: number): Promise<boolean> => {
  const { child } = running
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  child.kill("SIGCONT")
  child.kill("SIGKILL")
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMillis)
    void running.exited.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/**
 * Starts a server for the lifetime of the current scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisServer } from "@sluice/redis/testing"
 *
 * const test = Effect.scoped(Effect.gen(function*() {
 *   const server = yield* RedisServer.make()
 *   // connect to server.url; later: yield* server.pause, server.resume, server.restart
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RedisServer, RedisServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const path = binary()
    if (path === undefined) {
      return yield* new RedisServerError({
        reason: "redis-server is not installed: install the Debian package (apt-get install -y redis-server), " +
          "or set REDIS_SERVER to its path"
      })
    }
    const args = options.args ?? []
    const timeoutMillis = options.startTimeoutMillis ?? 10_000
    let current: Running | undefined
    let port = 0
    let lastOutput = ""

    const startOn = (candidate: number) =>
      Effect.tryPromise({
        try: () => launch(path, candidate, args, timeoutMillis),
        catch: (cause) => cause as Error
      })

    // A free port can be taken between the probe and the bind by another
    // process of a busy machine: try a few.
    for (let attempt = 0; attempt < 5 && current === undefined; attempt++) {
      const candidate = yield* Effect.promise(freePort)
      const started = yield* Effect.result(startOn(candidate))
      if (started._tag === "Success") {
        current = started.success
        port = candidate
      } else if (attempt === 4 || !portTaken.test(String(started.failure))) {
        return yield* new RedisServerError({ reason: `could not start redis-server: ${started.failure.message}` })
      }
    }

    const kill: Effect.Effect<void, RedisServerError> = Effect.suspend(() => {
      const running = current
      if (running === undefined) return Effect.void
      return Effect.flatMap(Effect.promise(() => stopProcess(running, 10_000)), (stopped) => {
        lastOutput = running.output
        if (stopped) {
          current = undefined
          return Effect.void
        }
        return Effect.fail(
          new RedisServerError({ reason: `redis-server on port ${port} did not exit`, output: running.output })
        )
      })
    })

    const start: Effect.Effect<void, RedisServerError> = Effect.suspend(() => {
      if (current !== undefined) return Effect.void
      return startOn(port).pipe(
        Effect.map((running) => {
          current = running
        }),
        Effect.mapError((cause) =>
          new RedisServerError({ reason: `could not restart redis-server on port ${port}: ${cause.message}` })
        )
      )
    })

    yield* Effect.addFinalizer(() => Effect.ignore(kill))

    const signal = (name: NodeJS.Signals) =>
      Effect.sync(() => {
        current?.child.kill(name)
      })

    return {
      host: "127.0.0.1",
      port,
      url: `redis://127.0.0.1:${port}`,
      pid: () => current?.child.pid,
      pause: signal("SIGSTOP"),
      resume: signal("SIGCONT"),
      kill,
      start,
      restart: Effect.andThen(kill, start),
      output: () => current?.output ?? lastOutput
    } satisfies RedisServer
  })
