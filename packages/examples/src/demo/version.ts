/**
 * `GET /api/version/stream`: who is serving, then a heartbeat event every
 * `HEARTBEAT_MS`.
 */
import { SseEvent } from "@sluice/core"
import { Schedule, Stream } from "effect"
import { execFileSync } from "node:child_process"

export interface VersionInfo {
  readonly version: string
  readonly environment: string
  readonly git_commit: string
}

export const readVersion = (env: NodeJS.ProcessEnv): VersionInfo => ({
  version: env["APP_VERSION"] ?? "0.1.0",
  environment: env["APP_ENV"] ?? env["NODE_ENV"] ?? "development",
  git_commit: env["GIT_COMMIT"] ?? gitCommit()
})

const gitCommit = (): string => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"]
    })
      .trim()
  } catch {
    return "unknown"
  }
}

export const versionStream = (info: VersionInfo, heartbeatMs: number): Stream.Stream<SseEvent.Frame> =>
  Stream.concat(
    Stream.make(SseEvent.make({ event: "version", data: JSON.stringify(info) })),
    Stream.fromSchedule(Schedule.spaced(heartbeatMs)).pipe(
      Stream.map((n) => SseEvent.make({ event: "heartbeat", data: JSON.stringify({ n: n + 1, ts: Date.now() }) }))
    )
  )
