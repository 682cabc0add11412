/**
 * The Python test backend (`backend.py`) as a child process of the test, on a
 * free port, stopped when the test's scope closes.
 */
import { Deferred, Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export interface Backend {
  readonly port: number
  readonly url: string
  readonly post: (path: string, body: unknown) => Effect.Effect<{ readonly status: number; readonly json: any }>
  /** The callbacks seen; waits (in the backend, bounded by 10 s) until `count` of `action` arrived. */
  readonly log: (action?: "connect" | "disconnect", count?: number) => Effect.Effect<Array<any>>
}

const script = fileURLToPath(new URL("./backend.py", import.meta.url))

export interface Response {
  readonly status: number
  readonly headers: Headers
  readonly json: any
}

export const request = (url: string, init: RequestInit = {}): Effect.Effect<Response> =>
  Effect.promise(async () => {
    const res = await fetch(url, init)
    const text = await res.text()
    let json: any = undefined
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = text
    }
    return { status: res.status, headers: res.headers, json }
  })

export const startBackend = Effect.acquireRelease(
  Effect.gen(function*() {
    const child: ChildProcess = spawn("python3", ["-u", script, "0"], { stdio: ["ignore", "pipe", "inherit"] })
    const ready = yield* Deferred.make<number, Error>()
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const m = /port (\d+)/.exec(out)
      if (m !== null) Deferred.doneUnsafe(ready, Effect.succeed(Number(m[1])))
    })
    child.on("exit", (code) => Deferred.doneUnsafe(ready, Effect.fail(new Error(`backend.py exited (${code})`))))
    child.on("error", (error) => Deferred.doneUnsafe(ready, Effect.fail(error)))
    const port = yield* Deferred.await(ready).pipe(Effect.timeout("20 seconds"), Effect.orDie)
    return { child, port }
  }),
  ({ child }) =>
    Effect.callback<void>((resume) => {
      if (child.exitCode !== null) return resume(Effect.void)
      child.once("exit", () => resume(Effect.void))
      child.kill("SIGTERM")
    })
).pipe(Effect.map(({ port }): Backend => {
  const url = `http://127.0.0.1:${port}`
  return {
    port,
    url,
    post: (path, body) =>
      Effect.map(
        request(url + path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body)
        }),
        ({ json, status }) => ({ status, json })
      ),
    log: (action, count = 0) =>
      Effect.map(
        request(`${url}/log?count=${count}${action === undefined ? "" : `&action=${action}`}`),
        ({ json }) => json as Array<any>
      )
  }
}))
