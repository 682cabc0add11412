/**
 * Starting, pinning, talking to and stopping the runner's child processes.
 *
 * Children are pinned to CPU cores with `taskset` when it exists, get their soft open-file
 * limit raised to the hard limit, talk over Node's IPC channel, and are all killed when the
 * runner exits (they also exit by themselves when the IPC channel closes).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import type {
  ClientCommand,
  ClientMessage,
  ClientResults,
  Reply,
  ServerCommand,
  ServerMessage,
  ServerResults
} from "./Ipc.ts"
import { recordStopped } from "./Load.ts"

/** How the work is spread over the machine's cores, and at which priority. */
export interface Placement {
  readonly serverCores: string | undefined
  readonly clientCores: string | undefined
  /** A `nice` value for the children (negative: ahead of the machine's other processes). */
  readonly nice: number | undefined
  readonly note: string
}

// On a machine shared with other work, a higher priority keeps the measured processes from
// waiting behind it. Lowering the nice value needs privileges: it is used only if allowed.
const priority = -10
const canRaisePriority = (): boolean => {
  try {
    execFileSync("nice", ["-n", String(priority), "true"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

const hasTaskset = (): boolean => {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/** Server on core 0, clients and the runner itself on the others (when there are others). */
export const placement = (): Placement => {
  const cores = availableParallelism()
  const nice = canRaisePriority() ? priority : undefined
  const niceNote = nice === undefined ? "" : `, children at nice ${nice}`
  if (cores < 2 || !hasTaskset()) {
    return {
      serverCores: undefined,
      clientCores: undefined,
      nice,
      note: `unpinned (${cores} cores, taskset: ${hasTaskset()})${niceNote}`
    }
  }
  const clientCores = cores === 2 ? "1" : `1-${cores - 1}`
  try {
    execFileSync("taskset", ["-a", "-p", "-c", clientCores, String(process.pid)], { stdio: "ignore" })
  } catch {
    // The runner only relays messages; leaving it unpinned costs little.
  }
  return {
    serverCores: "0",
    clientCores,
    nice,
    note: `server on core 0, clients and runner on core(s) ${clientCores}${niceNote}`
  }
}

const readLimit = (flag: string) => Number(execFileSync("sh", ["-c", `ulimit ${flag} -n`], { encoding: "utf8" }).trim())

/** The open-file limit of each child: its soft limit is raised to the hard one at spawn. */
export const childFileLimit = (): number => {
  const hard = readLimit("-H")
  // "unlimited" reads as NaN.
  if (Number.isFinite(hard)) return hard
  const soft = readLimit("-S")
  return Number.isFinite(soft) ? soft : 1_000_000
}

const children = new Set<ChildProcess>()
const killAll = () => {
  for (const child of children) child.kill("SIGKILL")
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

type Command = { readonly type: string; readonly id: number }
type WithoutId<C> = C extends unknown ? Omit<C, "id"> : never

/** A child process spoken to by request and reply. */
export class Child<C extends Command, R, E extends { readonly type: string }> {
  readonly label: string
  private readonly process: ChildProcess
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>()
  private readonly stderr: Array<string> = []
  private readonly listeners = new Set<(message: E) => void>()
  private nextId = 1
  private exited: string | undefined

  constructor(
    label: string,
    script: string,
    args: ReadonlyArray<string>,
    nodeFlags: ReadonlyArray<string>,
    cores: string | undefined,
    nice: number | undefined
  ) {
    this.label = label
    const node = [process.execPath, ...nodeFlags, new URL(script, import.meta.url).pathname, ...args]
    const niced = nice === undefined ? node : ["nice", "-n", String(nice), ...node]
    const pinned = cores === undefined ? niced : ["taskset", "-c", cores, ...niced]
    // `exec` keeps the pid and the IPC descriptor, so the child is the node process itself.
    const child = spawn("sh", ["-c", "ulimit -n \"$(ulimit -H -n)\" 2>/dev/null; exec \"$@\"", "sh", ...pinned], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      // Its own session, so that with autogroup scheduling its priority can be set below.
      detached: nice !== undefined
    })
    if (nice !== undefined && child.pid !== undefined) {
      // With autogroup scheduling (Linux), the CPU is shared between sessions first, so a
      // process's nice value counts only within its session: set its session's instead.
      try {
        writeFileSync(`/proc/${child.pid}/autogroup`, String(nice))
      } catch {
        // No autogroup here: the nice value of the process applies.
      }
    }
    this.process = child
    children.add(child)
    child.stderr?.setEncoding("utf8")
    child.stderr?.on("data", (text: string) => {
      if (process.env.BENCH_DEBUG !== undefined) process.stderr.write(text)
      this.stderr.push(...text.split("\n").filter((line) => line.length > 0))
      if (this.stderr.length > 30) this.stderr.splice(0, this.stderr.length - 30)
    })
    child.on("message", (message: E | Reply) => {
      if (message.type === "reply" || message.type === "error") {
        const reply = message as Reply
        const waiter = this.pending.get(reply.id)
        if (waiter === undefined) return
        this.pending.delete(reply.id)
        if (reply.type === "reply") waiter.resolve(reply.result)
        else waiter.reject(new Error(`${this.label}: ${reply.message}`))
        return
      }
      for (const listener of this.listeners) listener(message as E)
    })
    child.on("exit", (code, signal) => {
      children.delete(child)
      this.exited = `${this.label} exited (${signal ?? code})${this.lastErrors()}`
      for (const waiter of this.pending.values()) waiter.reject(new Error(this.exited))
      this.pending.clear()
    })
  }

  /** Recent lines the child wrote to stderr, for error messages. */
  lastErrors(): string {
    return this.stderr.length === 0 ? "" : `\n  ${this.stderr.slice(-8).join("\n  ")}`
  }

  /** Resolves with the first message of type `type` (e.g. `ready`). */
  waitFor<T extends E["type"]>(type: T, timeoutMs: number): Promise<Extract<E, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener)
        reject(new Error(`${this.label}: no "${type}" within ${timeoutMs} ms${this.exited ?? this.lastErrors()}`))
      }, timeoutMs)
      const listener = (message: E) => {
        if (message.type !== type) return
        clearTimeout(timer)
        this.listeners.delete(listener)
        resolve(message as Extract<E, { type: T }>)
      }
      this.listeners.add(listener)
    })
  }

  /** Calls `listener` for every unsolicited message; returns a function that removes it. */
  onMessage(listener: (message: E) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Sends a command and waits for its reply. */
  call<const M extends WithoutId<C>>(command: M, timeoutMs: number): Promise<R[M["type"] & keyof R]> {
    type Result = R[M["type"] & keyof R]
    if (this.exited !== undefined) return Promise.reject(new Error(this.exited))
    const id = this.nextId++
    return new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.label}: "${command.type}" got no reply within ${timeoutMs} ms${this.lastErrors()}`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as Result)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        }
      })
      this.process.send({ ...command, id })
    })
  }

  /** Sends a message that gets no reply. */
  post(message: object): void {
    if (this.exited === undefined && this.process.connected) this.process.send(message)
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.process.pid
  }

  /** Kills the child at once (SIGKILL), as a crash would; resolves once it is gone. */
  kill(): Promise<void> {
    if (this.exited !== undefined) return Promise.resolve()
    recordStopped(this.process.pid)
    return new Promise((resolve) => {
      this.process.once("exit", () => resolve())
      this.process.kill("SIGKILL")
    })
  }

  /**
   * Stops the child: closes the IPC channel, on which it exits by itself (writing its CPU
   * profile when profiling), and kills it if it is still there after 3 s.
   */
  stop(): Promise<void> {
    if (this.exited !== undefined) return Promise.resolve()
    recordStopped(this.process.pid)
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.process.kill("SIGKILL"), 3_000)
      this.process.once("exit", () => {
        clearTimeout(timer)
        resolve()
      })
      if (this.process.connected) this.process.disconnect()
      else this.process.kill("SIGKILL")
    })
  }
}

export type ServerChild = Child<Extract<ServerCommand, { readonly id: number }>, ServerResults, ServerMessage>
export type ClientChild = Child<ClientCommand, ClientResults, ClientMessage>

// Workspace packages load from their built `dist/` (what users install), not from their sources:
// Node's type stripping of the sources costs the server about 14 MiB of RSS that users never pay.
const serverFlags = ["--expose-gc", "--disable-warning=ExperimentalWarning"]
// A larger young generation makes the load clients cheaper; the servers keep Node's defaults.
const clientFlags = ["--max-semi-space-size=64", "--disable-warning=ExperimentalWarning"]
const profiling = { server: [] as Array<string>, client: [] as Array<string> }

/** Makes the servers and/or clients started from now on write V8 CPU profiles into `dir`. */
export const profileInto = (dir: string, which: "server" | "client" | "both"): void => {
  const flags = ["--cpu-prof", `--cpu-prof-dir=${dir}`]
  if (which !== "client") profiling.server = flags
  if (which !== "server") profiling.client = flags
}

/** Starts the server host for `peer`; resolves once it listens. */
export const startServer = async (
  peer: string,
  where: Placement,
  port?: number
): Promise<{ readonly child: ServerChild; readonly port: number; readonly description: string }> => {
  const child: ServerChild = new Child(
    `server ${peer}`,
    "./server.ts",
    port === undefined ? [peer] : [peer, String(port)],
    [
      ...serverFlags,
      ...profiling.server
    ],
    where.serverCores,
    where.nice
  )
  try {
    const ready = await child.waitFor("ready", 30_000)
    return { child, port: ready.port, description: ready.description }
  } catch (error) {
    await child.stop()
    throw error
  }
}

/** Starts `count` load-client processes. */
export const startClients = async (count: number, where: Placement): Promise<ReadonlyArray<ClientChild>> => {
  const clients: Array<ClientChild> = []
  for (let i = 0; i < count; i++) {
    clients.push(
      new Child(`client ${i}`, "./client.ts", [], [...clientFlags, ...profiling.client], where.clientCores, where.nice)
    )
  }
  await Promise.all(clients.map((client) => client.waitFor("ready", 30_000)))
  return clients
}
