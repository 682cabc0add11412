/**
 * The gateway as a real process, started exactly as the root `gateway`
 * script starts it (the command is read from the root package.json), on a
 * free port; its port comes from the `listening` log line.
 */
import { Deferred, Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../../../", import.meta.url))

// Node 22 from the workspace (the machine's own may be 20, which cannot run
// .ts files). The real binary, not the .bin shim: signals must reach it.
const nodeBinary = (): string => {
  const local = `${root}node_modules/node/bin/node`
  return existsSync(local) ? local : process.execPath
}

/** The root `gateway` script's arguments after `node`. */
export const gatewayArgs = (): Array<string> => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { scripts?: Record<string, string> }
  const [command, ...args] = (pkg.scripts?.["gateway"] ?? "").trim().split(/\s+/)
  if (command !== "node") throw new Error("the root gateway script is not a plain `node …` command")
  return args
}

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the executable to its end (for --help and refusals), at most 30 s. */
export const runToEnd = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<Run>((resume) => {
    const child = spawn(nodeBinary(), [...gatewayArgs(), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

export interface GatewayProcess {
  readonly port: number
  readonly output: () => string
  /** Sends `signal` and waits for the exit (SIGKILL after 20 s). */
  readonly stop: (signal?: NodeJS.Signals) => Effect.Effect<number | null>
}

/** Starts the gateway process in the current scope (killed when it closes, if still running). */
export const startProcess = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const child: ChildProcess = spawn(nodeBinary(), [...gatewayArgs(), "--port", "0", ...args], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      const exited = yield* Deferred.make<number | null>()
      const ready = yield* Deferred.make<number, Error>()
      const onData = (c: Buffer) => {
        output += c.toString()
        const m = /"message":"listening".*?"port":(\d+)/.exec(output)
        if (m !== null) Deferred.doneUnsafe(ready, Effect.succeed(Number(m[1])))
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.on("exit", (code) => {
        Deferred.doneUnsafe(exited, Effect.succeed(code))
        Deferred.doneUnsafe(ready, Effect.fail(new Error(`the gateway exited (${code}):\n${output}`)))
      })
      const port = yield* Deferred.await(ready).pipe(Effect.timeout("30 seconds"), Effect.orDie)
      const stop = (signal: NodeJS.Signals = "SIGTERM") =>
        Effect.gen(function*() {
          if (child.exitCode === null) child.kill(signal)
          return yield* Deferred.await(exited).pipe(
            Effect.timeoutOrElse({
              duration: "20 seconds",
              orElse: () => Effect.sync(() => (child.kill("SIGKILL"), null))
            })
          )
        })
      return { child, process: { port, output: () => output, stop } satisfies GatewayProcess }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  ).pipe(Effect.map(({ process }) => process))
