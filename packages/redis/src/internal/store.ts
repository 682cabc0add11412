/**
 * The Redis `Log.Store` of one node: logs opened by name, one Pub/Sub
 * subscription for all of them, position checks, and the scripts behind
 * `append` and `read`.
 *
 * @internal
 */
import { Log, OptionCheck } from "@sluice/core"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import type * as Redis from "effect/persistence/Redis"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { RedisUnavailableError } from "../RedisConnection.ts"
import { Appender } from "./appender.ts"
import * as channel from "./channel.ts"
import * as keys from "./keys.ts"
import type * as scripts from "./logScripts.ts"
import * as metrics from "./metrics.ts"
import { type Burst, Tail } from "./tail.ts"
import * as topicClient from "./topicClient.ts"
import * as topicLog from "./topicLog.ts"

/** Validated settings of a store. @internal */
export interface Config {
  readonly prefix: string
  readonly address: string
  readonly node: string
  readonly pingMillis: number
  /** `0`: no periodic checks. */
  readonly checkMillis: number
  readonly timeoutMillis: number
  /** The error for Redis unreachable at start (made by the public module). */
  readonly unavailable: (operation: string, detail: string) => RedisUnavailableError
  readonly maxPending: number
  readonly maxBatch: number
  readonly maxInFlight: number
  readonly maxBuffered: number
  readonly fillChunk: number
  /** Expiry of an idle topic's keys for a history age limit (`Infinity`: none): `0` for none. */
  readonly expireIdle: (maxAgeMillis: number) => number
}

interface Opened {
  readonly log: Log.Log
  readonly tail: Tail
  /** Done once the first read placed the tail (failed if it could not). */
  readonly ready: Deferred.Deferred<void, Log.LogError>
  refs: number
}

const toMillis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))

const limit = (name: string, value: number | undefined, fallback: number): number => {
  OptionCheck.check("RedisLog", `${name} (a number)`, OptionCheck.atLeast(value, -Infinity, false), value)
  return value === undefined ? fallback : Math.max(0, Math.floor(value))
}

/** History bounds from `Log.Options`; invalid ones are a defect naming the option. @internal */
export const bounds = (options: Log.Options | undefined, config: Config): scripts.Bounds => {
  const maxEvents = limit("maxEvents", options?.maxEvents, 1_000)
  const maxBytes = options?.maxBytes === Infinity ? Infinity : limit("maxBytes", options?.maxBytes, 1_048_576)
  if (!Number.isFinite(maxEvents) && !Number.isFinite(maxBytes)) {
    OptionCheck.check("RedisLog", "maxEvents and maxBytes (they cannot both be unlimited)", false, "Infinity")
  }
  const age = toMillis(options?.maxAge ?? "1 hour")
  return {
    maxEvents,
    maxBytes,
    maxAgeMillis: Number.isFinite(age) ? age : -1,
    ttlMillis: config.expireIdle(age)
  }
}

/** @internal */
export const make = (
  redis: Redis.Redis["Service"],
  config: Config
): Effect.Effect<
  Log.Store["Service"] & { readonly opened: () => ReadonlyMap<string, Tail> },
  RedisUnavailableError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const context = yield* Effect.context<never>()
    const counted = {
      fill: metrics.fills,
      missed: metrics.missed,
      epoch: metrics.epochChanges,
      unavailable: Metric.withAttributes(metrics.appendFailures, { reason: "unavailable" }),
      timeout: Metric.withAttributes(metrics.appendFailures, { reason: "timeout" }),
      full: Metric.withAttributes(metrics.appendFailures, { reason: "full" })
    }
    const record = (what: keyof typeof counted) => counted[what].updateUnsafe(1, context)
    const fork = (effect: Effect.Effect<void>) => {
      run(effect)
    }
    const opened = new Map<string, Opened>()
    const logChannel = keys.logChannel(config.prefix)
    const retry = Schedule.spaced(Math.max(50, Math.min(config.pingMillis, 500)))

    const client = topicClient.make(redis, config)
    const readRaw = client.read

    const onMessage = (message: string) => {
      let parsed: { t?: unknown; e?: unknown; s?: unknown; f?: unknown; c?: unknown }
      try {
        parsed = JSON.parse(message)
      } catch {
        return
      }
      if (typeof parsed.t !== "string") return
      const target = opened.get(parsed.t)
      if (target === undefined) return
      const burst: Burst = {
        epoch: String(parsed.e),
        first: Number(parsed.s),
        fields: parsed.f as ReadonlyArray<string>,
        callerIds: parsed.c as ReadonlyArray<string> | undefined
      }
      target.tail.receive(burst)
    }

    // Position checks: every log, one script call each (pipelined together).
    // `now`: act on what this check sees (after a re-subscription), not only
    // on a lag that outlived a whole interval.
    let checkNow = false
    const check = Effect.suspend(() => {
      const now = checkNow
      checkNow = false
      return Effect.forEach(
        opened,
        ([name, o]) =>
          Effect.matchEffect(readRaw(name, boundsOf(o), o.tail.lastSeq, 0, "read"), {
            onFailure: () =>
              Effect.sync(() => {
                checkNow = true
              }),
            onSuccess: (range) => Effect.sync(() => o.tail.checked(range, now))
          }),
        { concurrency: 16, discard: true }
      )
    })

    const boundsByName = new Map<string, scripts.Bounds>()
    const boundsOf = (o: Opened) => boundsByName.get(o.log.name)!

    const subscription = yield* channel.run(redis, {
      channel: logChannel,
      node: config.node,
      pingMillis: config.pingMillis,
      onMessage,
      onSubscribed: (first) => {
        if (first) return
        metrics.resubscriptions.updateUnsafe(1, context)
        checkNow = true
        fork(check)
      }
    })
    // A subscription that cannot be made at start is a clear error, not a hang.
    yield* subscription.ready.pipe(
      Effect.timeoutOrElse({
        duration: config.timeoutMillis,
        orElse: () =>
          Effect.fail(
            config.unavailable(`subscribe to ${logChannel}`, `no subscription within ${config.timeoutMillis} ms`)
          )
      })
    )
    if (config.checkMillis > 0) {
      fork(Effect.repeat(Effect.andThen(Effect.sleep(config.checkMillis), check), Schedule.forever))
    }

    const appenderFor = (name: string, b: scripts.Bounds) =>
      new Appender({
        send: (entries) =>
          client.append(name, b, entries).pipe(
            Effect.tapError((e) => Effect.sync(() => record(e.cause === undefined ? "timeout" : "unavailable"))),
            Effect.map(([epoch, first]) => {
              metrics.appendCalls.updateUnsafe(1, context)
              return entries.map((e, i): Log.Recorded => ({
                seq: Number(first) + i,
                id: e.id ?? Log.formatId(String(epoch), Number(first) + i)
              }))
            })
          ),
        run: fork,
        maxPending: config.maxPending,
        maxBatch: config.maxBatch,
        maxInFlight: config.maxInFlight,
        full: (waiting) => {
          record("full")
          return new Log.LogError({
            log: name,
            operation: "append",
            reason: `${waiting} events already wait for Redis at ${config.address} (maxPending ${config.maxPending})`
          })
        }
      })

    const release = (name: string, entry: Opened) => {
      if (--entry.refs === 0 && opened.get(name) === entry) {
        opened.delete(name)
        boundsByName.delete(name)
      }
    }

    const open = (name: string, options?: Log.Options): Effect.Effect<Log.Log, Log.LogError, Scope.Scope> =>
      Effect.gen(function*() {
        const existing = opened.get(name)
        let entry: Opened
        if (existing !== undefined) {
          existing.refs++
          entry = existing
          yield* Effect.onError(Deferred.await(existing.ready), () => Effect.sync(() => release(name, existing)))
        } else {
          const b = bounds(options, config)
          const tail = new Tail({
            read: (after, count) => readRaw(name, b, after, count, "read"),
            run: fork,
            maxBuffered: config.maxBuffered,
            chunk: config.fillChunk,
            retry,
            count: record
          })
          // Registered before the first read: bursts that arrive meanwhile are
          // buffered and replayed once the position is known.
          entry = {
            log: topicLog.make(name, b, tail, appenderFor(name, b), client),
            tail,
            ready: Deferred.makeUnsafe(),
            refs: 1
          }
          boundsByName.set(name, b)
          opened.set(name, entry)
          const first = yield* Effect.exit(readRaw(name, b, 0, 0, "open"))
          if (first._tag === "Failure") {
            release(name, entry)
            Deferred.doneUnsafe(entry.ready, Effect.failCause(first.cause))
            return yield* Effect.failCause(first.cause)
          }
          tail.open(first.value)
          Deferred.doneUnsafe(entry.ready, Effect.void)
        }
        yield* Effect.addFinalizer(() => Effect.sync(() => release(name, entry)))
        return entry.log
      })

    return {
      open,
      opened: () => new Map([...opened].map(([name, o]) => [name, o.tail]))
    }
  })
