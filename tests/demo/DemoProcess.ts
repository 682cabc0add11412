/**
 * Runs the demo server as a child process, exactly as `pnpm demo` does (the
 * command comes from the examples package's `demo` script), and reads its
 * port from the `Listening on http://127.0.0.1:<port>` log line.
 *
 * Every wait here is bounded: a server that does not start or stop in time
 * fails the test with its output attached.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
const examples = `${root}packages/examples/`

// Node 22 from the workspace (the machine's own may be 20, which cannot run
// .ts files). The real binary, not the .bin shim: signals must reach it.
const nodeBinary = (): string => {
  const local = `${root}node_modules/node/bin/node`
  return existsSync(local) ? local : process.execPath
}

/** The `demo` script's arguments after `node`. */
const demoArgs = (): Array<string> => {
  const pkg = JSON.parse(readFileSync(`${examples}package.json`, "utf8")) as { scripts?: Record<string, string> }
  const script = pkg.scripts?.["demo"] ?? ""
  const [command, ...args] = script.trim().split(/\s+/)
  if (command !== "node" || args.length === 0) {
    throw new Error(`the examples package's demo script is not a plain \`node …\` command: ${JSON.stringify(script)}`)
  }
  return args
}

export interface DemoProcess {
  readonly port: number
  readonly url: string
  readonly pid: number
  /** Everything the process wrote so far (stdout and stderr, interleaved). */
  readonly output: () => string
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit, at most
   * `timeoutMs` (then SIGKILL and a rejection).
   */
  readonly stop: (
    signal?: NodeJS.Signals,
    timeoutMs?: number
  ) => Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

export interface StartOptions {
  /** `0` (default) picks a free port. */
  readonly port?: number | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
  /** How long to wait for the "Listening on" line. Default 20 s. */
  readonly timeoutMs?: number | undefined
  /** A command that runs node (it must exec it, as `taskset -c 0` does). */
  readonly prefix?: ReadonlyArray<string> | undefined
}

const listening = /Listening on http:\/\/127\.0\.0\.1:(\d+)/

/** Starts the demo server and resolves once it is listening. */
export const startDemo = (options: StartOptions = {}): Promise<DemoProcess> =>
  new Promise((resolve, reject) => {
    const [command, ...args] = [...(options.prefix ?? []), nodeBinary(), ...demoArgs()]
    const child: ChildProcess = spawn(command!, args, {
      cwd: examples,
      env: { ...process.env, PORT: String(options.port ?? 0), ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    let settled = false
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once("exit", (code, signal) => done({ code, signal }))
    )
    const fail = (message: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.kill("SIGKILL")
      reject(new Error(`${message}\n--- demo output ---\n${output}`))
    }
    const timer = setTimeout(
      () => fail(`the demo server did not log "Listening on" within ${options.timeoutMs ?? 20_000} ms`),
      options.timeoutMs ?? 20_000
    )
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const match = listening.exec(output)
      if (match === null || settled) return
      settled = true
      clearTimeout(timer)
      const port = Number(match[1])
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        pid: child.pid ?? -1,
        output: () => output,
        stop: (signal = "SIGTERM", timeoutMs = 10_000) => {
          if (child.exitCode !== null || child.signalCode !== null) return exited
          child.kill(signal)
          return new Promise((done, failStop) => {
            const killer = setTimeout(() => {
              child.kill("SIGKILL")
              failStop(new Error(`the demo server did not exit within ${timeoutMs} ms of ${signal}\n${output}`))
            }, timeoutMs)
            void exited.then((result) => {
              clearTimeout(killer)
              done(result)
            })
          })
        }
      })
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("error", (error) => fail(`could not start the demo server: ${error.message}`))
    void exited.then(({ code, signal }) => fail(`the demo server exited before listening (code ${code}, ${signal})`))
  })
