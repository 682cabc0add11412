/**
 * The Redis `Log.Store` of one node: logs opened by name, one Pub/Sub
 * subscription for all of them, position checks, and the scripts behind
 * `append` and `read`.
 *
 * @internal
 */
import { Log } from "@sluice/core"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Metric from "effect/Metric"
import type * as Redis from "effect/persistence/Redis"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { RedisUnavailableError } from "../RedisConnection.ts"
import { Appender } from "./appender.ts"
import * as channel from "./channel.ts"
import { describeCause } from "./errors.ts"
import * as keys from "./keys.ts"
import * as scripts from "./logScripts.ts"
import * as metrics from "./metrics.ts"
import { type Burst, type Range, Tail } from "./tail.ts"

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
  if (value === undefined) return fallback
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new Error(`RedisLog: ${name} must be a number (got ${String(value)})`)
  }
  return Math.max(0, Math.floor(value))
}

/** History bounds from `Log.Options`; invalid ones are a defect naming the option. @internal */
export const bounds = (options: Log.Options | undefined, config: Config): scripts.Bounds => {
  const maxEvents = limit("maxEvents", options?.maxEvents, 1_000)
  const maxBytes = options?.maxBytes === Infinity ? Infinity : limit("maxBytes", options?.maxBytes, 1_048_576)
  if (!Number.isFinite(maxEvents) && !Number.isFinite(maxBytes)) {
    throw new Error("RedisLog: maxEvents and maxBytes cannot both be unlimited")
  }
  const age = toMillis(options?.maxAge ?? "1 hour")
  return {
    maxEvents,
    maxBytes,
    maxAgeMillis: Number.isFinite(age) ? age : -1,
    ttlMillis: config.expireIdle(age)
  }
}

// 10 base-36 characters, as in-memory logs have (36^10 < 2^53).
const randomEpoch = Effect.map(Random.next, (n) => Math.floor(n * 36 ** 10).toString(36).padStart(10, "0"))

const parseRange = (reply: scripts.ReadResult): Range => {
  const entries = []
  for (let i = 3; i + 2 < reply.length; i += 3) {
    entries.push({ seq: Number(reply[i]), callerId: String(reply[i + 1]), fields: String(reply[i + 2]) })
  }
  return {
    epoch: String(reply[0]),
    lastSeq: Number(reply[1]),
    firstRetained: Number(reply[2]),
    entries
  }
}

const toEntries = (epoch: string, range: Range): Array<Log.Entry> =>
  range.entries.map((e) => {
    const id = scripts.decodeCallerId(e.callerId) ?? Log.formatId(epoch, e.seq)
    return { seq: e.seq, id, frame: new TextEncoder().encode(Log.frameText(id, e.fields)) }
  })

// At least one entry (progress), then as many as fit the budget's bytes.
const cut = (entries: Array<Log.Entry>, budget: Log.Budget, fromNewest: boolean): Array<Log.Entry> => {
  let bytes = 0
  let n = 0
  const at = (i: number) => entries[fromNewest ? entries.length - 1 - i : i]!
  while (n < entries.length && n < budget.maxEvents) {
    const size = at(n).frame.byteLength
    if (n > 0 && bytes + size > budget.maxBytes) break
    bytes += size
    n++
  }
  return fromNewest ? entries.slice(entries.length - n) : entries.slice(0, n)
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

    const fail = (name: string, operation: "open" | "append" | "read") => (cause: unknown) =>
      new Log.LogError({
        log: name,
        operation,
        reason: `Redis at ${config.address} is unavailable: ${describeCause(cause)}`,
        cause
      })
    const timedOut = (name: string, operation: "open" | "append" | "read") => () =>
      Effect.fail(
        new Log.LogError({
          log: name,
          operation,
          reason: `Redis at ${config.address} did not answer within ${config.timeoutMillis} ms` +
            (operation === "append" ? " (the append may still be recorded)" : "")
        })
      )
    const guarded = <A>(name: string, operation: "open" | "append" | "read", effect: Effect.Effect<A, unknown>) =>
      effect.pipe(
        Effect.mapError(fail(name, operation)),
        Effect.timeoutOrElse({ duration: config.timeoutMillis, orElse: timedOut(name, operation) })
      )

    const readRaw = (name: string, b: scripts.Bounds, after: number, count: number, operation: "open" | "read") =>
      Effect.gen(function*() {
        const epoch = yield* randomEpoch
        const now = yield* Clock.currentTimeMillis
        const reply = yield* guarded(
          name,
          operation,
          redis.eval(scripts.read)(keys.topic(config.prefix, name), epoch, now, b, after, 0, count)
        )
        return parseRange(reply)
      })

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

    const makeLog = (name: string, b: scripts.Bounds, tail: Tail): Log.Log => {
      const topicKeys = keys.topic(config.prefix, name)
      const appender = new Appender({
        send: (entries) =>
          Effect.gen(function*() {
            const candidate = yield* randomEpoch
            const now = yield* Clock.currentTimeMillis
            const [epoch, first] = yield* guarded(
              name,
              "append",
              redis.eval(scripts.append)(topicKeys, logChannel, name, candidate, now, b, entries)
            ).pipe(Effect.tapError((e) => Effect.sync(() => record(e.cause === undefined ? "timeout" : "unavailable"))))
            metrics.appendCalls.updateUnsafe(1, context)
            return entries.map((e, i): Log.Recorded => ({
              seq: Number(first) + i,
              id: e.id ?? Log.formatId(String(epoch), Number(first) + i)
            }))
          }),
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

      const read = (request: Log.ReadRequest): Effect.Effect<Log.ReadResult, Log.LogError> =>
        Effect.gen(function*() {
          const budget = request.budget
          const count = Math.max(0, Math.min(budget.maxEvents, 10_000))
          if (request._tag === "Newest") {
            const r = yield* readRaw(name, b, -1, count, "read")
            const entries = cut(toEntries(r.epoch, r), budget, true)
            // Complete: everything retained (the oldest retained entry is among them).
            return Log.found(r.epoch, r.lastSeq, entries, (entries[0]?.seq ?? r.firstRetained) <= r.firstRetained)
          }
          const after = (r: Range, seq: number): Log.ReadResult => {
            if (seq > r.lastSeq) return Log.notFound(r.epoch, r.lastSeq, "unknown")
            if (seq < r.firstRetained - 1) return Log.notFound(r.epoch, r.lastSeq, "expired")
            const entries = cut(toEntries(r.epoch, r), budget, false)
            const last = entries.length === 0 ? seq : entries[entries.length - 1]!.seq
            return Log.found(r.epoch, r.lastSeq, entries, last >= r.lastSeq)
          }
          if (request._tag === "AfterSeq") {
            const r = yield* readRaw(name, b, Math.max(0, request.seq), count, "read")
            return r.epoch === request.epoch ? after(r, request.seq) : Log.notFound(r.epoch, r.lastSeq, "restarted")
          }
          const parsed = Log.parseId(request.id)
          let r: Range | undefined
          if (parsed !== undefined) {
            r = yield* readRaw(name, b, parsed.seq, count, "read")
            if (r.epoch === parsed.epoch) return after(r, parsed.seq)
          }
          // A publisher's own id: found by a scan of the retained history.
          const own = yield* guarded(
            name,
            "read",
            redis.eval(scripts.findCallerId)(topicKeys, request.id, Math.max(1, b.maxEvents))
          )
          if (typeof own === "number") return after(yield* readRaw(name, b, own, count, "read"), own)
          r ??= yield* readRaw(name, b, 0, 0, "read")
          return Log.notFound(r.epoch, r.lastSeq, parsed === undefined ? "unknown" : "restarted")
        })

      return {
        [Log.TypeId]: Log.TypeId,
        name,
        position: () => ({ epoch: tail.epoch, seq: tail.lastSeq }),
        append: (entries) => appender.append(entries),
        read,
        listen: (listener) => {
          tail.listeners.add(listener)
          return () => {
            tail.listeners.delete(listener)
          }
        },
        stats: () => ({ events: 0, bytes: 0, expiresAt: undefined }),
        synchronous: undefined
      }
    }

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
          entry = { log: makeLog(name, b, tail), tail, ready: Deferred.makeUnsafe(), refs: 1 }
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
