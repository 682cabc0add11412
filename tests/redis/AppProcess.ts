/**
 * Runs `app.ts` as real processes for the multi-process tests: started on a
 * free port against a given Redis, stopped (or killed) by the test. Every
 * wait is bounded; a process that does not start fails the test with its
 * output attached.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))

// Node 22 from the workspace (the machine's own may be 20, which cannot run
// .ts files). The real binary, not the .bin shim: signals must reach it.
const nodeBinary = (): string => {
  const local = `${root}node_modules/node/bin/node`
  return existsSync(local) ? local : process.execPath
}

export interface AppProcess {
  readonly name: string
  readonly port: number
  readonly url: string
  readonly pid: number
  readonly output: () => string
  /** `SIGKILL`, and waits for the exit. */
  readonly kill: Effect.Effect<void>
  /** `SIGSTOP`: the process holds its sockets and does nothing. */
  readonly pause: Effect.Effect<void>
  readonly alive: () => boolean
}

const listening = /Listening on http:\/\/127\.0\.0\.1:(\d+)/

const launch = (name: string, redisUrl: string, env: Record<string, string>) =>
  new Promise<{ child: ChildProcess; port: number; output: () => string; exited: Promise<void> }>(
    (resolve, reject) => {
      const child = spawn(
        nodeBinary(),
        ["--conditions=@sluice/source", "--disable-warning=ExperimentalWarning", `${root}tests/redis/app.ts`],
        {
          cwd: `${root}tests`,
          env: { ...process.env, ...env, PORT: "0", REDIS_URL: redisUrl, NODE_NAME: name },
          stdio: ["ignore", "pipe", "pipe"]
        }
      )
      let output = ""
      let settled = false
      const exited = new Promise<void>((done) => child.once("exit", () => done()))
      const fail = (message: string) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        child.kill("SIGKILL")
        reject(new Error(`${name}: ${message}\n--- output ---\n${output}`))
      }
      const timer = setTimeout(() => fail("did not log \"Listening on\" within 30 s"), 30_000)
      const onData = (chunk: Buffer) => {
        output += chunk.toString("utf8")
        const match = listening.exec(output)
        if (match === null || settled) return
        settled = true
        clearTimeout(timer)
        resolve({ child, port: Number(match[1]), output: () => output, exited })
      }
      child.stdout?.on("data", onData)
      child.stderr?.on("data", onData)
      child.once("error", (error) => fail(`could not start: ${error.message}`))
      void exited.then(() => fail("exited before listening"))
    }
  )

/** Starts the app as process `name` for the current scope (killed when it closes). */
export const start = (
  name: string,
  redisUrl: string,
  env: Record<string, string> = {}
): Effect.Effect<AppProcess, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => launch(name, redisUrl, env), catch: (e) => e as Error }),
    ({ child, exited }) =>
      Effect.promise(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        return exited
      })
  ).pipe(Effect.map(({ child, exited, output, port }) => ({
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    output,
    alive: () => child.exitCode === null && child.signalCode === null,
    pause: Effect.sync(() => {
      child.kill("SIGSTOP")
    }),
    kill: Effect.promise(() => {
      child.kill("SIGKILL")
      return exited
    })
  })))
