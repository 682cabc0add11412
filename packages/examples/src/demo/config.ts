/**
 * The demo's settings for running in public, read from the environment once
 * at start-up. Every number must be a finite number of at least 0; a bad
 * value stops the server with a message naming the variable, instead of
 * becoming a limit that never applies.
 *
 * | variable | meaning | default |
 * | --- | --- | --- |
 * | `DEMO_PUBLISH_TOKEN` | bearer token for `POST /api/ticker/publish` | random, printed at start-up |
 * | `DEMO_PUBLISH_RATE` | publishes per second per client, bursts of 4 s worth (`0`: no limit) | 10 |
 * | `DEMO_TASK_RATE` | task creations per second per client, bursts of 4 s worth (`0`: no limit) | 5 |
 * | `DEMO_MAX_TASKS` | running tasks per client (`0`: no limit) | 20 |
 * | `DEMO_PENDING_BYTES` | budget of the task registry's waiting events (bytes) | 32 MiB |
 * | `DEMO_CHAT_RATE` | chat questions (and stops) per second per client, bursts of 4 s worth (`0`: no limit) | 5 |
 * | `DEMO_MAX_CHATS` | chat answers generating at once | 200 |
 * | `DEMO_CHAT_PAUSE_MS` | fixed pause between bursts of chat tokens (tests use it to slow answers down) | 40 to 250 ms at random |
 * | `MAX_STREAMS` | open SSE streams | 5 000 |
 * | `MAX_STREAMS_PER_CLIENT` | open SSE streams per client | 256 |
 * | `MAX_EVENT_LOOP_DELAY_MS` | load admission threshold (`0`: off) | the library's default |
 * | `MAX_SOCKETS` | open sockets (streams + headroom for /health, /metrics) | `MAX_STREAMS` + 256 |
 * | `LOG_REQUESTS` | `1`: log every request (errors are always logged) | off |
 * | `REDIS_URL` | run the ticker topic, the task streams and the chat's resumable answers on this Redis (several demo nodes share them) | none: in memory |
 */
import { randomBytes } from "node:crypto"

export interface Config {
  readonly publishToken: string
  /** The token was made up at start-up (print it: nobody else knows it). */
  readonly publishTokenGenerated: boolean
  readonly publishRate: number
  readonly taskRate: number
  readonly maxTasksPerClient: number
  readonly pendingBytes: number
  readonly chatRate: number
  readonly maxChats: number
  /** `undefined`: a random pause per burst. */
  readonly chatPauseMs: number | undefined
  readonly maxStreams: number
  readonly maxStreamsPerClient: number
  /** `undefined`: the library's default; `0`: off. */
  readonly maxEventLoopDelayMs: number | undefined
  readonly maxSockets: number
  readonly logRequests: boolean
  /** With a Redis URL, the ticker, the tasks and the chat's answers live in Redis, shared by every demo node on it. */
  readonly redisUrl: string | undefined
}

const number = (env: NodeJS.ProcessEnv, name: string, fallback: number): number => {
  const raw = env[name]
  if (raw === undefined || raw.trim() === "") return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number of at least 0 (got ${JSON.stringify(raw)})`)
  }
  return value
}

/** Reads the settings from `env`. */
export const fromEnv = (env: NodeJS.ProcessEnv): Config => {
  const given = env["DEMO_PUBLISH_TOKEN"]
  const maxStreams = number(env, "MAX_STREAMS", 5_000)
  const delay = env["MAX_EVENT_LOOP_DELAY_MS"]
  return {
    publishToken: given !== undefined && given !== "" ? given : randomBytes(18).toString("base64url"),
    publishTokenGenerated: given === undefined || given === "",
    publishRate: number(env, "DEMO_PUBLISH_RATE", 10),
    taskRate: number(env, "DEMO_TASK_RATE", 5),
    maxTasksPerClient: number(env, "DEMO_MAX_TASKS", 20),
    pendingBytes: number(env, "DEMO_PENDING_BYTES", 32 * 1024 * 1024),
    chatRate: number(env, "DEMO_CHAT_RATE", 5),
    maxChats: number(env, "DEMO_MAX_CHATS", 200),
    chatPauseMs: env["DEMO_CHAT_PAUSE_MS"] === undefined || env["DEMO_CHAT_PAUSE_MS"].trim() === ""
      ? undefined
      : number(env, "DEMO_CHAT_PAUSE_MS", 0),
    maxStreams,
    maxStreamsPerClient: number(env, "MAX_STREAMS_PER_CLIENT", 256),
    maxEventLoopDelayMs: delay === undefined || delay.trim() === ""
      ? undefined
      : number(env, "MAX_EVENT_LOOP_DELAY_MS", 0),
    maxSockets: number(env, "MAX_SOCKETS", maxStreams + 256),
    logRequests: env["LOG_REQUESTS"] === "1" || env["LOG_REQUESTS"] === "true",
    redisUrl: env["REDIS_URL"] === undefined || env["REDIS_URL"].trim() === "" ? undefined : env["REDIS_URL"].trim()
  }
}
