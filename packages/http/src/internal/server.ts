/**
 * The server-wide service behind `SseServer.layer`: admission by counts
 * (server, client) and by load, the set of open streams, and the bounded,
 * batched shutdown that closes them. Its metrics are in `metrics.ts`.
 *
 * @internal
 */
import { OptionCheck } from "@sluice/core"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type * as SseServer from "../SseServer.ts"
import * as Load from "./load.ts"
import { eventLoopDelay, limitRefusals, mailboxDepth, mailboxDepthMax } from "./metrics.ts"

const { atLeast, check, millis } = OptionCheck

/** @internal */
export class ConnectionLimitError extends Data.TaggedError("ConnectionLimitError")<{
  readonly scope: "server" | "client" | "shutdown" | "load"
  readonly limit: number
  readonly retryAfterSeconds: number
  /** For `scope: "load"`: which measurement is over its threshold. */
  readonly reason?: SseServer.LoadReason | undefined
  /** For `scope: "load"`: the measured value (milliseconds, a heap share, or bytes). */
  readonly measured?: number | undefined
}> {
  override get message(): string {
    return this.scope === "shutdown"
      ? "the server is shutting down"
      : this.scope === "load"
      ? `the server is overloaded (${overloadDetail(this.reason, this.measured ?? 0, this.limit)}); try again later`
      : this.scope === "server"
      ? `the server has reached its limit of ${this.limit} streams`
      : `this client has reached its limit of ${this.limit} streams`
  }
}

const overloadDetail = (reason: SseServer.LoadReason | undefined, measured: number, limit: number): string =>
  reason === "event_loop_delay"
    ? `event-loop delay ${measured.toFixed(1)} ms, above ${limit} ms`
    : reason === "heap"
    ? `V8 heap ${Math.round(measured * 100)}% full, above ${Math.round(limit * 100)}%`
    : `${measured} bytes of memory left, below ${limit}`

type Resolved = SseServer.Settings

const peerKey = (request: HttpServerRequest): string => Option.getOrElse(request.remoteAddress, () => "unknown")

// Each option of `load`, checked and resolved; `undefined` turns a threshold off.
const resolveLoad = (
  where: string,
  options: SseServer.LoadOptions | false | undefined
): Load.Thresholds | undefined => {
  if (options === false) return undefined
  const o = options ?? {}
  const delay = o.maxEventLoopDelay
  check(
    where,
    "load.maxEventLoopDelay (a duration or false)",
    delay === false || !Number.isNaN(millis(delay, 0)),
    delay
  )
  const heap = o.maxHeapUsed
  check(
    where,
    "load.maxHeapUsed (a share of the heap limit, above 0 and at most 1, or false)",
    heap === undefined || heap === false || (typeof heap === "number" && heap > 0 && heap <= 1),
    heap
  )
  const memory = o.minAvailableMemory
  check(
    where,
    "load.minAvailableMemory (a number of bytes, at least 0, or false)",
    memory === false || atLeast(memory, 0),
    memory
  )
  const interval = millis(o.sampleInterval, 250)
  check(
    where,
    "load.sampleInterval (a finite duration of at least 10 ms)",
    Number.isFinite(interval) && interval >= 10,
    o.sampleInterval
  )
  return {
    maxEventLoopDelayMillis: delay === false ? undefined : millis(delay, 40),
    maxHeapUsed: heap === false ? undefined : heap ?? 0.85,
    minAvailableMemory: memory === false ? undefined : memory ?? 64 * 1024 * 1024,
    sampleIntervalMillis: interval
  }
}

// Between the base and twice it: refused clients do not all come back at once.
const jittered = (seconds: number): number => seconds + Math.floor(Math.random() * (seconds + 1))

/** @internal */
export const make = (options: SseServer.Options): Effect.Effect<SseServer.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const where = "SseServer"
    const checkLimit = (name: string, value: number | undefined) =>
      check(where, `${name} (a number, at least 1; Infinity for none)`, atLeast(value, 1, false), value)
    checkLimit("maxConnections", options.maxConnections)
    checkLimit("maxConnectionsPerClient", options.maxConnectionsPerClient)
    checkLimit("shutdownBatchSize", options.shutdownBatchSize)
    for (
      const [name, input] of [["retryAfter", options.retryAfter], ["shutdownTimeout", options.shutdownTimeout]] as const
    ) {
      check(where, `${name} (a finite duration)`, Number.isFinite(millis(input, 0)), input)
    }
    const resolved: Resolved = {
      maxConnections: options.maxConnections ?? 10_000,
      maxConnectionsPerClient: options.maxConnectionsPerClient ?? 64,
      clientKey: options.clientKey ?? peerKey,
      retryAfterSeconds: Math.max(
        1,
        Math.ceil(Duration.toSeconds(Duration.fromInputUnsafe(options.retryAfter ?? "5 seconds")))
      ),
      shutdownTimeoutMillis: Duration.toMillis(Duration.fromInputUnsafe(options.shutdownTimeout ?? "5 seconds")),
      shutdownBatchSize: options.shutdownBatchSize ?? 500,
      load: resolveLoad(where, options.load)
    }
    const monitor = resolved.load === undefined ? Load.off : Load.start(resolved.load)
    yield* Effect.addFinalizer(() => Effect.sync(monitor.close))
    const context = yield* Effect.context<never>()
    const clock = yield* Clock.Clock
    const perClient = new Map<string, number>()
    const registrations = new Set<SseServer.Registration>()
    let admitted = 0
    let shuttingDown = false
    let report: Effect.Effect<SseServer.ShutdownReport> | undefined

    const refusals = {
      server: Metric.withAttributes(limitRefusals, { scope: "server" }),
      client: Metric.withAttributes(limitRefusals, { scope: "client" }),
      shutdown: Metric.withAttributes(limitRefusals, { scope: "shutdown" }),
      event_loop_delay: Metric.withAttributes(limitRefusals, { scope: "load", reason: "event_loop_delay" }),
      heap: Metric.withAttributes(limitRefusals, { scope: "load", reason: "heap" }),
      memory: Metric.withAttributes(limitRefusals, { scope: "load", reason: "memory" })
    }
    const refusal = (scope: "server" | "client" | "shutdown", limit: number) => {
      refusals[scope].updateUnsafe(1, context)
      return new ConnectionLimitError({ scope, limit, retryAfterSeconds: resolved.retryAfterSeconds })
    }
    const refusalForLoad = (over: NonNullable<ReturnType<Load.Monitor["over"]>>) => {
      refusals[over.reason].updateUnsafe(1, context)
      return new ConnectionLimitError({
        scope: "load",
        limit: over.limit,
        retryAfterSeconds: jittered(resolved.retryAfterSeconds),
        reason: over.reason,
        measured: over.measured
      })
    }

    const depth = () => {
      let sum = 0
      let max = 0
      for (const r of registrations) {
        const n = r.connection.size()
        sum += n
        if (n > max) max = n
      }
      return { sum, max }
    }
    const noop = () => {}
    const depthRegistration = Metric.registerUnsafe(mailboxDepth, context, {
      get: () => ({ value: depth().sum }),
      update: noop,
      modify: noop
    })
    const depthMaxRegistration = Metric.registerUnsafe(mailboxDepthMax, context, {
      get: () => ({ value: depth().max }),
      update: noop,
      modify: noop
    })
    const delayRegistration = Metric.registerUnsafe(eventLoopDelay, context, {
      get: () => ({ value: monitor.current().eventLoopDelayMillis / 1000 }),
      update: noop,
      modify: noop
    })

    // What a stream keeps while it lasts: a finalizer that holds the client
    // key only (`Effect.addFinalizer` would hold the request's context).
    // A refusal, or the slot taken: what gives it back.
    const admitNow = (request: HttpServerRequest): ConnectionLimitError | (() => void) => {
      if (shuttingDown) return refusal("shutdown", resolved.maxConnections)
      if (admitted >= resolved.maxConnections) return refusal("server", resolved.maxConnections)
      const over = monitor.over()
      if (over !== undefined) return refusalForLoad(over)
      const key = resolved.clientKey(request)
      const mine = perClient.get(key) ?? 0
      if (mine >= resolved.maxConnectionsPerClient) return refusal("client", resolved.maxConnectionsPerClient)
      admitted++
      perClient.set(key, mine + 1)
      let given = false
      // The release holds the client key only (a stream keeps it while it lasts).
      return () => {
        if (given) return
        given = true
        admitted--
        const n = (perClient.get(key) ?? 1) - 1
        if (n <= 0) perClient.delete(key)
        else perClient.set(key, n)
      }
    }
    const admit = (request: HttpServerRequest) =>
      Effect.suspend(() => {
        const admission = admitNow(request)
        if (admission instanceof ConnectionLimitError) return Effect.fail(admission)
        return Effect.flatMap(Scope.Scope, (scope) => Scope.addFinalizer(scope, Effect.sync(admission)))
      })

    // `false` when shutdown had begun (the stream was told to close, like the others).
    const enlist = (registration: SseServer.Registration): boolean => {
      if (shuttingDown) {
        // Admitted just before shutdown began: close it like the others.
        Effect.runFork(registration.closeForShutdown)
        return false
      }
      registrations.add(registration)
      return true
    }
    const register = (registration: SseServer.Registration) =>
      Effect.sync(() => {
        // Until the stream ends: its connection's end (which the scope's
        // closing also brings) takes it out.
        if (enlist(registration)) registration.connection.addObserver(() => registrations.delete(registration))
      })

    // Close in batches: each batch gets its close frames, then the next batch
    // starts once it has drained or its share of the deadline has passed.
    const runShutdown = Effect.gen(function*() {
      shuttingDown = true
      const start = clock.currentTimeMillisUnsafe()
      const deadline = start + resolved.shutdownTimeoutMillis
      const all = [...registrations]
      let closedGracefully = 0
      let batches = 0
      for (let i = 0; i < all.length; i += resolved.shutdownBatchSize) {
        const batch = all.slice(i, i + resolved.shutdownBatchSize)
        batches++
        yield* Effect.forEach(batch, (r) => r.closeForShutdown, { concurrency: "unbounded", discard: true })
        const left = deadline - clock.currentTimeMillisUnsafe()
        if (left <= 0) break
        const ended = yield* Effect.forEach(batch, (r) => r.connection.outcome, { concurrency: "unbounded" }).pipe(
          Effect.timeoutOption(left)
        )
        if (Option.isSome(ended)) closedGracefully += batch.length
        else {
          for (const r of batch) if (!r.connection.isOpen()) closedGracefully++
        }
      }
      let forced = 0
      for (const r of all) {
        if (r.connection.isOpen()) {
          forced++
          yield* r.connection.kill("shutdown")
        }
      }
      return {
        open: all.length,
        closedGracefully,
        forced,
        batches,
        millis: clock.currentTimeMillisUnsafe() - start
      } satisfies SseServer.ShutdownReport
    })

    const shutdown = Effect.suspend(() => {
      if (report === undefined) {
        report = Effect.runSync(Effect.cached(runShutdown))
      }
      return report
    })

    yield* Effect.addFinalizer(() =>
      Effect.andThen(
        shutdown,
        Effect.sync(() => {
          depthRegistration.remove()
          depthMaxRegistration.remove()
          delayRegistration.remove()
        })
      )
    )

    return {
      settings: resolved,
      admit,
      register,
      open: () => registrations.size,
      load: monitor.current,
      connections: () => [...registrations].map((r) => r.connection),
      shuttingDown: () => shuttingDown,
      shutdown,
      admitNow,
      enlist,
      delist: (registration) => {
        registrations.delete(registration)
      }
    } satisfies SseServer.Service & Plain
  })

/**
 * The plain-call side of the server, for SSE routes (a stream keeps neither
 * a finalizer per slot nor an observer per registration: it gives both back
 * itself when it ends).
 *
 * @internal
 */
export interface Plain {
  /** A refusal, or the slot taken and the function that gives it back (once). */
  readonly admitNow: (request: HttpServerRequest) => ConnectionLimitError | (() => void)
  /** Registers an open stream; `false` when shutdown had begun (the stream was told to close). */
  readonly enlist: (registration: SseServer.Registration) => boolean
  readonly delist: (registration: SseServer.Registration) => void
}

/** The plain-call side of `server`, when it is sluice's own. @internal */
export const plainOf = (server: SseServer.Service): Plain | undefined =>
  "admitNow" in server ? server as SseServer.Service & Plain : undefined
