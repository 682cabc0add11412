/**
 * The gateway's configuration: every option, its flag, its environment
 * variable, its default and its meaning, in one table that both the parser
 * and `--help` read (so the help text cannot drift from what is parsed).
 *
 * - Flags win over environment variables, which win over defaults.
 * - A value that cannot work (a port that is not a number, a duration that
 *   is not one, an unknown flag, both or neither of two exclusive choices)
 *   fails with a {@link ConfigError} naming the option: the gateway never
 *   starts with a setting it silently ignores.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Result from "effect/Result"
import { readFileSync } from "node:fs"

/**
 * What a keyed route does when the application refuses a connection with
 * 401, 403 or 404: answer that status with a problem-details body
 * (`status`), or open the stream and send `connection_open`, `error` and
 * `connection_close` with the refusal's reason (`stream`), which is what
 * existing `EventSource` clients of the Flask gateway expect.
 *
 * @since 0.1.0
 * @category models
 */
export type RefusalMode = "status" | "stream"

/**
 * What a subscriber of a topic gets when its mailbox is full (see
 * `Feed.Strategy`).
 *
 * @since 0.2.0
 * @category models
 */
export type SlowClientStrategy = "disconnect" | "sliding" | "dropping"

/**
 * The parsed configuration. Durations are in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  readonly port: number
  readonly host: string
  readonly callbackUrl: string | undefined
  readonly secret: string | undefined
  readonly routes: ReadonlyArray<string>
  readonly jwtSecret: string | undefined
  readonly jwtPublicKey: string | undefined
  readonly jwtCookie: string
  readonly jwtAudience: string | undefined
  readonly jwtIssuer: string | undefined
  readonly redisUrl: string | undefined
  readonly redisPrefix: string
  readonly redisLeaseMs: number
  readonly callbackTimeoutMs: number
  readonly callbackConcurrency: number
  readonly forwardHeaders: ReadonlyArray<string>
  readonly refusal: RefusalMode
  readonly openEvent: string | false
  readonly closeEvent: string | false
  readonly heartbeatMs: number | false
  readonly heartbeatEvents: boolean
  readonly maxConnections: number
  readonly maxConnectionsPerClient: number
  readonly maxEventLoopDelayMs: number | false
  readonly capacity: number
  readonly writeTimeoutMs: number | false
  readonly slowClient: SlowClientStrategy
  readonly maxBodyBytes: number
  readonly maxEventBytes: number
  readonly pendingCapacity: number
  readonly pendingTtlMs: number
  readonly maxKeys: number
  readonly historyEvents: number
  readonly historyBytes: number
  readonly historyAgeMs: number
  /** Topic events published within this window of the last hand-out go out together (`false`: no window). */
  readonly coalesceMs: number | false
  readonly maxTopicsPerSubscription: number
  readonly shutdownTimeoutMs: number
  readonly logLevel: "Debug" | "Info" | "Warn" | "Error"
  readonly logFormat: "json" | "pretty"
}

/**
 * An option that cannot work, or an unknown flag.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `invalid option ${this.option}: ${this.reason}`
  }
}

/** A value, or why the text is refused. */
type Parser<A> = (text: string) => Result.Result<A, string>

const ok = Result.succeed
const no = Result.fail

interface Spec<A> {
  readonly flag: string
  readonly env: string | undefined
  readonly default: A
  /** How the default reads in `--help`. */
  readonly shown: string
  readonly help: string
  readonly parse: Parser<A>
}

const spec = <A>(s: Spec<A>): Spec<A> => s

const int = (min: number): Parser<number> => (text) => {
  const n = Number(text)
  return Number.isSafeInteger(n) && n >= min && text.trim() !== ""
    ? ok(n)
    : no(`expected a whole number of at least ${min}`)
}

const text: Parser<string> = (t) => ok(t)

const optional: Parser<string | undefined> = (t) => ok(t === "" ? undefined : t)

const oneOf = <const A extends string>(...values: ReadonlyArray<A>): Parser<A> => (t) =>
  (values as ReadonlyArray<string>).includes(t) ? ok(t as A) : no(`expected one of ${values.join(", ")}`)

const splitList = (t: string): ReadonlyArray<string> => t.split(",").map((s) => s.trim()).filter((s) => s !== "")

const bool: Parser<boolean> = (t) =>
  t === "true" || t === "1" ? ok(true) : t === "false" || t === "0" ? ok(false) : no("expected true or false")

/** `500ms`, `5s`, `2m`, `1h`, a plain number of milliseconds, or an Effect duration (`5 seconds`). */
const millis: Parser<number> = (t) => {
  const short = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(t.trim())
  if (short !== null) {
    const unit = short[2] === "s" ? 1_000 : short[2] === "m" ? 60_000 : short[2] === "h" ? 3_600_000 : 1
    return ok(Math.round(Number(short[1]) * unit))
  }
  let parsed: Duration.Duration | undefined
  try {
    parsed = Duration.fromInputUnsafe(t as Duration.Input)
  } catch {
    parsed = undefined
  }
  return parsed === undefined ? no("expected a duration such as 500ms, 5s, 2m") : ok(Duration.toMillis(parsed))
}

const millisOrOff: Parser<number | false> = (t) => t === "false" || t === "off" || t === "0" ? ok(false) : millis(t)

const eventName: Parser<string | false> = (t) =>
  t === "false" || t === "off"
    ? ok(false)
    : /^[^\r\n\0:]+$/.test(t)
    ? ok(t)
    : no("expected an event name without CR, LF, NUL or ':'")

const url: Parser<string | undefined> = (t) => {
  if (t === "") return ok(undefined)
  try {
    const u = new URL(t)
    return u.protocol === "http:" || u.protocol === "https:" ? ok(t) : no("expected an http:// or https:// URL")
  } catch {
    return no("expected an http:// or https:// URL")
  }
}

const redisUrl: Parser<string | undefined> = (t) => {
  if (t === "") return ok(undefined)
  try {
    const u = new URL(t)
    return u.protocol === "redis:" || u.protocol === "rediss:"
      ? ok(t)
      : no("expected a redis:// or rediss:// URL")
  } catch {
    return no("expected a redis:// or rediss:// URL")
  }
}

/** PEM text, or the path of a file holding it. */
const pem: Parser<string | undefined> = (t) => {
  if (t === "") return ok(undefined)
  if (t.includes("-----BEGIN")) return ok(t.replace(/\\n/g, "\n"))
  try {
    return ok(readFileSync(t, "utf8"))
  } catch {
    return no(`expected PEM text or the path of a readable PEM file (${t})`)
  }
}

const routePatterns: Parser<ReadonlyArray<string>> = (t) => {
  const patterns = splitList(t)
  for (const p of patterns) {
    const params = p.split("/").filter((s) => s.startsWith(":"))
    if (!p.startsWith("/") || params.length !== 1 || params[0]!.length < 2) {
      return no(`each pattern must start with / and have exactly one :key segment (got ${JSON.stringify(p)})`)
    }
  }
  return patterns.length > 0 ? ok(patterns) : no("expected at least one pattern")
}

/**
 * Every option, in the order `--help` lists them.
 *
 * @since 0.1.0
 * @category options
 */
export const options = {
  port: spec({
    flag: "port",
    env: "PORT",
    default: 8090,
    shown: "8090",
    help: "TCP port to listen on (0: any free port)",
    parse: int(0)
  }),
  host: spec({
    flag: "host",
    env: "HOST",
    default: "127.0.0.1",
    shown: "127.0.0.1",
    help: "Address to listen on",
    parse: text
  }),
  callbackUrl: spec({
    flag: "callback-url",
    env: "GATEWAY_CALLBACK_URL",
    default: undefined as string | undefined,
    shown: "none",
    help:
      "The application's callback URL (connect and disconnect calls); without it every keyed connection is accepted",
    parse: url
  }),
  secret: spec({
    flag: "secret",
    env: "GATEWAY_SECRET",
    default: undefined as string | undefined,
    shown: "none",
    help:
      "Shared secret: the bearer token of POST /internal/send (and of /publish for the app); sent as the bearer token of callbacks. Without it /internal/send refuses every request",
    parse: optional
  }),
  routes: spec({
    flag: "routes",
    env: "GATEWAY_ROUTES",
    default: ["/sse/:key"] as ReadonlyArray<string>,
    shown: "/sse/:key",
    help: "Comma-separated keyed stream paths, each with one :key segment (e.g. /sse/tasks/:key/stream)",
    parse: routePatterns
  }),
  jwtSecret: spec({
    flag: "jwt-secret",
    env: "GATEWAY_JWT_SECRET",
    default: undefined as string | undefined,
    shown: "none",
    help: "HS256 key of publisher and subscriber JWTs",
    parse: optional
  }),
  jwtPublicKey: spec({
    flag: "jwt-public-key",
    env: "GATEWAY_JWT_PUBLIC_KEY",
    default: undefined as string | undefined,
    shown: "none",
    help: "RS256 public key of JWTs (PEM text, or a path to a PEM file)",
    parse: pem
  }),
  jwtCookie: spec({
    flag: "jwt-cookie",
    env: "GATEWAY_JWT_COOKIE",
    default: "sluice_token",
    shown: "sluice_token",
    help: "Cookie that may carry the JWT (browsers), when there is no Authorization header",
    parse: text
  }),
  jwtAudience: spec({
    flag: "jwt-audience",
    env: "GATEWAY_JWT_AUDIENCE",
    default: undefined as string | undefined,
    shown: "none",
    help: "Required `aud` claim of JWTs",
    parse: optional
  }),
  jwtIssuer: spec({
    flag: "jwt-issuer",
    env: "GATEWAY_JWT_ISSUER",
    default: undefined as string | undefined,
    shown: "none",
    help: "Required `iss` claim of JWTs",
    parse: optional
  }),
  redisUrl: spec({
    flag: "redis-url",
    env: "REDIS_URL",
    default: undefined as string | undefined,
    shown: "none: one process, in memory",
    help:
      "Run on Redis (redis://[user:password@]host:port[/db], or rediss://) so several gateway processes behind a load balancer act as one: keys, outboxes and tokens are shared (a client on one process gets what /internal/send posted to another; a token works on every process), and topics live in one Redis log (Last-Event-ID resumes on any process). Redis unreachable at start: the gateway exits naming the address",
    parse: redisUrl
  }),
  redisPrefix: spec({
    flag: "redis-prefix",
    env: "GATEWAY_REDIS_PREFIX",
    default: "sluice-gateway",
    shown: "sluice-gateway",
    help: "Prefix of the gateway's Redis keys and channels: gateways with the same REDIS_URL and prefix act as one",
    parse: (t) => /^[A-Za-z0-9_.:-]{1,64}$/.test(t) ? ok(t) : no("expected 1 to 64 of A-Z a-z 0-9 _ . : -")
  }),
  redisLeaseMs: spec({
    flag: "redis-lease",
    env: "GATEWAY_REDIS_LEASE",
    default: 10_000,
    shown: "10s",
    help:
      "With REDIS_URL: how long a connection of a process that died stays registered; then its token answers 404 and events for its key wait for the next client (at least 1s)",
    parse: (t) => {
      const parsed = millis(t)
      return Result.isSuccess(parsed) && parsed.success < 1_000 ? no("expected at least 1s") : parsed
    }
  }),
  callbackTimeoutMs: spec({
    flag: "callback-timeout",
    env: "GATEWAY_CALLBACK_TIMEOUT",
    default: 5_000,
    shown: "5s",
    help: "Longest wait for the application's answer to a callback (then 503 with Retry-After)",
    parse: millis
  }),
  callbackConcurrency: spec({
    flag: "callback-concurrency",
    env: "GATEWAY_CALLBACK_CONCURRENCY",
    default: 64,
    shown: "64",
    help: "Callbacks in flight at once; a connect that cannot get a slot within the timeout gets 503",
    parse: int(1)
  }),
  forwardHeaders: spec({
    flag: "forward-headers",
    env: "GATEWAY_FORWARD_HEADERS",
    default: ["authorization", "cookie", "user-agent", "accept-language"] as ReadonlyArray<string>,
    shown: "authorization,cookie,user-agent,accept-language",
    help: "Client request headers passed to the connect callback (a header holding the gateway secret never is)",
    parse: (t) => ok(splitList(t).map((h) => h.toLowerCase()))
  }),
  refusal: spec({
    flag: "refusal",
    env: "GATEWAY_REFUSAL",
    default: "status" as RefusalMode,
    shown: "status",
    help:
      "Answer to a connect the app refuses: status (its 401/403/404) or stream (connection_open, error, connection_close)",
    parse: oneOf("status", "stream")
  }),
  openEvent: spec({
    flag: "open-event",
    env: "GATEWAY_OPEN_EVENT",
    default: "connection_open" as string | false,
    shown: "connection_open",
    help: "Name of the first event ({status, correlation_id}); off for none",
    parse: eventName
  }),
  closeEvent: spec({
    flag: "close-event",
    env: "GATEWAY_CLOSE_EVENT",
    default: "connection_close" as string | false,
    shown: "connection_close",
    help: "Name of the last event ({reason, correlation_id}); off for none",
    parse: eventName
  }),
  heartbeatMs: spec({
    flag: "heartbeat",
    env: "GATEWAY_HEARTBEAT",
    default: 15_000 as number | false,
    shown: "15s",
    help: "Heartbeat interval (comments after this long idle, or events every interval); off for none",
    parse: millisOrOff
  }),
  heartbeatEvents: spec({
    flag: "heartbeat-events",
    env: "GATEWAY_HEARTBEAT_EVENTS",
    default: false,
    shown: "false",
    help: "Send heartbeats as `heartbeat` events with {timestamp} (visible to EventSource) instead of comments",
    parse: bool
  }),
  maxConnections: spec({
    flag: "max-connections",
    env: "GATEWAY_MAX_CONNECTIONS",
    default: 10_000,
    shown: "10000",
    help: "Open streams per process (beyond: 503 with Retry-After)",
    parse: int(1)
  }),
  maxConnectionsPerClient: spec({
    flag: "max-connections-per-client",
    env: "GATEWAY_MAX_CONNECTIONS_PER_CLIENT",
    default: 64,
    shown: "64",
    help: "Open streams per client address (beyond: 429 with Retry-After)",
    parse: int(1)
  }),
  maxEventLoopDelayMs: spec({
    flag: "max-event-loop-delay",
    env: "GATEWAY_MAX_EVENT_LOOP_DELAY",
    default: 40 as number | false,
    shown: "40ms",
    help:
      "Refuse new streams (503 with Retry-After) while the event loop lags more than this; off to admit by counts only",
    parse: millisOrOff
  }),
  capacity: spec({
    flag: "capacity",
    env: "GATEWAY_CAPACITY",
    default: 256,
    shown: "256",
    help: "Events a stream's mailbox holds before its slow-client strategy applies",
    parse: int(1)
  }),
  writeTimeoutMs: spec({
    flag: "write-timeout",
    env: "GATEWAY_WRITE_TIMEOUT",
    default: 30_000 as number | false,
    shown: "30s",
    help: "Longest a write to a client may take before the client counts as gone; off for none",
    parse: millisOrOff
  }),
  slowClient: spec({
    flag: "slow-client",
    env: "GATEWAY_SLOW_CLIENT",
    default: "disconnect" as SlowClientStrategy,
    shown: "disconnect",
    help:
      "Topic subscriber whose mailbox is full: disconnect (it resumes with Last-Event-ID), sliding (drop the oldest) or dropping (drop the newest)",
    parse: oneOf("disconnect", "sliding", "dropping")
  }),
  maxBodyBytes: spec({
    flag: "max-body-bytes",
    env: "GATEWAY_MAX_BODY_BYTES",
    default: 1_048_576,
    shown: "1048576",
    help: "Largest request body of /internal/send and /publish, enforced while reading (413)",
    parse: int(1)
  }),
  maxEventBytes: spec({
    flag: "max-event-bytes",
    env: "GATEWAY_MAX_EVENT_BYTES",
    default: 65_536,
    shown: "65536",
    help: "Largest encoded event (413 beyond)",
    parse: int(1)
  }),
  pendingCapacity: spec({
    flag: "pending-capacity",
    env: "GATEWAY_PENDING_CAPACITY",
    default: 256,
    shown: "256",
    help: "Events a key keeps while no client is connected (the oldest go first)",
    parse: int(1)
  }),
  pendingTtlMs: spec({
    flag: "pending-ttl",
    env: "GATEWAY_PENDING_TTL",
    default: 300_000,
    shown: "5m",
    help: "How long a waiting event (and a closed key's last event) is kept",
    parse: millis
  }),
  maxKeys: spec({
    flag: "max-keys",
    env: "GATEWAY_MAX_KEYS",
    default: 100_000,
    shown: "100000",
    help: "Keys held at once (live or with waiting events)",
    parse: int(1)
  }),
  historyEvents: spec({
    flag: "history",
    env: "GATEWAY_HISTORY",
    default: 10_000,
    shown: "10000",
    help: "Topic events kept for Last-Event-ID resume (0: none)",
    parse: int(0)
  }),
  historyBytes: spec({
    flag: "history-bytes",
    env: "GATEWAY_HISTORY_BYTES",
    default: 16_777_216,
    shown: "16777216",
    help: "Encoded bytes of topic events kept for resume",
    parse: int(0)
  }),
  historyAgeMs: spec({
    flag: "history-age",
    env: "GATEWAY_HISTORY_AGE",
    default: 3_600_000,
    shown: "1h",
    help: "Age of the oldest topic event kept for resume",
    parse: millis
  }),
  coalesceMs: spec({
    flag: "coalesce",
    env: "GATEWAY_COALESCE",
    default: 2,
    shown: "2ms",
    help:
      "Topic events published within this window of the last hand-out to subscribers wait for its end and go out together, one write per subscriber (off: every turn of the event loop)",
    parse: millisOrOff
  }),
  maxTopicsPerSubscription: spec({
    flag: "max-topics",
    env: "GATEWAY_MAX_TOPICS",
    default: 64,
    shown: "64",
    help: "Topics one /subscribe request may name",
    parse: int(1)
  }),
  shutdownTimeoutMs: spec({
    flag: "shutdown-timeout",
    env: "GATEWAY_SHUTDOWN_TIMEOUT",
    default: 5_000,
    shown: "5s",
    help:
      "Upper bound for closing every stream (connection_close, reason shutdown) and sending the disconnect callbacks",
    parse: millis
  }),
  logLevel: spec({
    flag: "log-level",
    env: "GATEWAY_LOG_LEVEL",
    default: "Info" as Config["logLevel"],
    shown: "info",
    help: "debug, info, warn or error",
    parse: (t) => {
      const level = t.toLowerCase()
      return level === "debug" || level === "info" || level === "warn" || level === "error"
        ? ok((level[0]!.toUpperCase() + level.slice(1)) as Config["logLevel"])
        : no("expected debug, info, warn or error")
    }
  }),
  logFormat: spec({
    flag: "log-format",
    env: "GATEWAY_LOG_FORMAT",
    default: "json" as Config["logFormat"],
    shown: "json",
    help: "json (one object per line) or pretty",
    parse: oneOf("json", "pretty")
  })
} satisfies { readonly [K in keyof Config]: Spec<Config[K]> }

/**
 * The configuration with every default.
 *
 * @example
 * ```ts
 * import { Config } from "@sluice/gateway"
 *
 * const local: Config.Config = { ...Config.defaults, port: 9000, secret: "s3cret" }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: Config = Object.fromEntries(
  Object.entries(options).map(([name, s]) => [name, s.default])
) as unknown as Config

/**
 * What the command line asked for: run with a configuration, or print the help.
 *
 * @since 0.1.0
 * @category models
 */
export type Command = { readonly _tag: "Run"; readonly config: Config } | { readonly _tag: "Help" }

/**
 * Reads the configuration from command-line arguments (`--port 9000`,
 * `--port=9000`, `--help`) and environment variables.
 *
 * @example
 * ```ts
 * import { Config } from "@sluice/gateway"
 *
 * const command = Config.parse(["--port", "9000"], { GATEWAY_SECRET: "s3cret" })
 * // Result.succeed({ _tag: "Run", config: { port: 9000, secret: "s3cret", ... } })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): Result.Result<Command, ConfigError> => {
  const byFlag = new Map<string, string>()
  for (const [name, s] of Object.entries(options)) byFlag.set(s.flag, name)
  const given = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--help" || arg === "-h") return Result.succeed({ _tag: "Help" })
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg)
    const name = m === null ? undefined : byFlag.get(m[1]!)
    if (m === null || name === undefined) {
      return Result.fail(new ConfigError({ option: arg, reason: "unknown option (see --help)" }))
    }
    let value = m[2]
    if (value === undefined) {
      value = argv[++i]
      if (value === undefined) return Result.fail(new ConfigError({ option: arg, reason: "a value is missing" }))
    }
    given.set(name, value)
  }
  const out: Record<string, unknown> = {}
  for (const [name, s] of Object.entries(options) as Array<[string, Spec<unknown>]>) {
    const fromFlag = given.get(name)
    const raw = fromFlag ?? (s.env === undefined ? undefined : env[s.env])
    if (raw === undefined) {
      out[name] = s.default
      continue
    }
    const parsed = s.parse(raw)
    if (Result.isFailure(parsed)) {
      const option = fromFlag !== undefined || s.env === undefined ? `--${s.flag}` : `${s.env} (--${s.flag})`
      return Result.fail(new ConfigError({ option, reason: parsed.failure }))
    }
    out[name] = parsed.success
  }
  const config = out as unknown as Config
  if (config.jwtSecret !== undefined && config.jwtSecret.length < 32) {
    return Result.fail(
      new ConfigError({ option: "GATEWAY_JWT_SECRET (--jwt-secret)", reason: "an HS256 key needs at least 32 bytes" })
    )
  }
  return Result.succeed({ _tag: "Run", config })
}

/**
 * The `--help` text: usage, then every option with its environment
 * variable and default.
 *
 * @example
 * ```ts
 * import { Config } from "@sluice/gateway"
 *
 * console.log(Config.help()) // every option, its flag, environment variable and default
 * ```
 *
 * @since 0.1.0
 * @category help
 */
export const help = (): string => {
  const lines = [
    "sluice-gateway: a standalone SSE server that any backend drives over HTTP",
    "",
    "Usage: sluice-gateway [options]",
    "",
    "Keyed streams: clients connect to GATEWAY_ROUTES; the app is called back (connect/disconnect)",
    "and sends events with POST /internal/send. Topics: POST /publish, GET /subscribe?topic=a&topic=b.",
    "Also: GET /health, GET /metrics (Prometheus). HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on one port.",
    "One process with no external service by default; with REDIS_URL, every gateway process on that Redis",
    "(and prefix) acts as one: start several behind a load balancer.",
    "",
    "Options (flag, environment variable, default):",
    ""
  ]
  for (const s of Object.values(options) as Array<Spec<unknown>>) {
    lines.push(`  --${s.flag} <value>${s.env === undefined ? "" : `  [${s.env}]`}  (default: ${s.shown})`)
    lines.push(`      ${s.help}`)
  }
  lines.push("  --help, -h", "      Print this help and exit", "")
  lines.push("Durations: 500ms, 5s, 2m, 1h, or a number of milliseconds.")
  return lines.join("\n")
}
