/**
 * The topic log's calls to Redis, with the errors a `Log` promises: each
 * call is bounded by the timeout, and a failure is a `Log.LogError` naming
 * the address (an append that timed out may still be recorded, and says so).
 *
 * @internal
 */
import { Log } from "@sluice/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Redis from "effect/persistence/Redis"
import * as Random from "effect/Random"
import { describeCause } from "./errors.ts"
import * as keys from "./keys.ts"
import * as scripts from "./logScripts.ts"
import type { Range } from "./tail.ts"

type Operation = "open" | "append" | "read"

/** What the calls need to know. @internal */
export interface Settings {
  readonly prefix: string
  readonly address: string
  readonly timeoutMillis: number
}

/** @internal */
export interface TopicClient {
  /** Up to `count` entries after `after` (below 0: the newest), with the topic's position. */
  readonly read: (
    name: string,
    bounds: scripts.Bounds,
    after: number,
    count: number,
    operation: "open" | "read"
  ) => Effect.Effect<Range, Log.LogError>
  /** Appends a burst: its epoch and first sequence number. */
  readonly append: (
    name: string,
    bounds: scripts.Bounds,
    entries: ReadonlyArray<Log.NewEntry>
  ) => Effect.Effect<scripts.AppendResult, Log.LogError>
  /** The sequence number of the retained entry with the publisher's id, if any. */
  readonly findCallerId: (name: string, id: string, limit: number) => Effect.Effect<number | null, Log.LogError>
}

// 10 base-36 characters, as in-memory logs have (36^10 < 2^53).
const randomEpoch = Effect.map(Random.next, (n) => Math.floor(n * 36 ** 10).toString(36).padStart(10, "0"))

const parseRange = (reply: scripts.ReadResult): Range => {
  const entries = []
  for (let i = 3; i + 2 < reply.length; i += 3) {
    entries.push({ seq: Number(reply[i]), callerId: String(reply[i + 1]), fields: String(reply[i + 2]) })
  }
  return { epoch: String(reply[0]), lastSeq: Number(reply[1]), firstRetained: Number(reply[2]), entries }
}

/** @internal */
export const make = (redis: Redis.Redis["Service"], settings: Settings): TopicClient => {
  const channel = keys.logChannel(settings.prefix)
  const guarded = <A>(name: string, operation: Operation, effect: Effect.Effect<A, unknown>) =>
    effect.pipe(
      Effect.mapError((cause) =>
        new Log.LogError({
          log: name,
          operation,
          reason: `Redis at ${settings.address} is unavailable: ${describeCause(cause)}`,
          cause
        })
      ),
      Effect.timeoutOrElse({
        duration: settings.timeoutMillis,
        orElse: () =>
          Effect.fail(
            new Log.LogError({
              log: name,
              operation,
              reason: `Redis at ${settings.address} did not answer within ${settings.timeoutMillis} ms` +
                (operation === "append" ? " (the append may still be recorded)" : "")
            })
          )
      })
    )
  const evalRead = redis.eval(scripts.read)
  const evalAppend = redis.eval(scripts.append)
  const evalFind = redis.eval(scripts.findCallerId)
  return {
    read: (name, bounds, after, count, operation) =>
      Effect.gen(function*() {
        const epoch = yield* randomEpoch
        const now = yield* Clock.currentTimeMillis
        const topic = keys.topic(settings.prefix, name)
        return parseRange(yield* guarded(name, operation, evalRead(topic, epoch, now, bounds, after, 0, count)))
      }),
    append: (name, bounds, entries) =>
      Effect.gen(function*() {
        const epoch = yield* randomEpoch
        const now = yield* Clock.currentTimeMillis
        const topic = keys.topic(settings.prefix, name)
        return yield* guarded(name, "append", evalAppend(topic, channel, name, epoch, now, bounds, entries))
      }),
    findCallerId: (name, id, limit) => guarded(name, "read", evalFind(keys.topic(settings.prefix, name), id, limit))
  }
}
