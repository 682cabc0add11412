import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as keys from "../src/internal/keys.ts"
import * as scripts from "../src/internal/logScripts.ts"
import { fresh } from "./support.ts"

const topic = keys.topic("t1", "prices")
const bounds = (over: Partial<scripts.Bounds> = {}): scripts.Bounds => ({
  maxEvents: 1000,
  maxBytes: Infinity,
  maxAgeMillis: -1,
  ttlMillis: 0,
  ...over
})
const events = (...bodies: Array<string>) => bodies.map((fields) => ({ id: undefined, fields }))

describe("log scripts on a real redis-server", () => {
  it.live("append numbers a burst, stores <seq>-0 entries and publishes it once", () =>
    Effect.gen(function*() {
      const { redis } = yield* fresh
      const messages = yield* redis.subscribe("t1:log")
      const append = redis.eval(scripts.append)
      const [epoch, first] = yield* append(
        topic,
        "t1:log",
        "prices",
        "ep1",
        1000,
        bounds(),
        events("data: a\n\n", "data: b\n\n")
      )
      expect([epoch, first]).toEqual(["ep1", 1])
      const again = yield* append(topic, "t1:log", "prices", "other", 1001, bounds(), events("data: c\n\n"))
      expect(again).toEqual(["ep1", 3]) // the epoch stays while the stream lives
      const ids = yield* redis.send<Array<[string, Array<string>]>>("XRANGE", topic.log, "-", "+")
      expect(ids.map(([id]) => id)).toEqual(["1-0", "2-0", "3-0"])
      const m1 = JSON.parse((yield* Queue.take(messages)).message)
      expect(m1).toEqual({ t: "prices", e: "ep1", s: 1, f: ["data: a\n\n", "data: b\n\n"] })
      const m2 = JSON.parse((yield* Queue.take(messages)).message)
      expect(m2).toEqual({ t: "prices", e: "ep1", s: 3, f: ["data: c\n\n"] })
    }).pipe(Effect.scoped))

  it.live("publisher ids are marked and found again", () =>
    Effect.gen(function*() {
      const { redis } = yield* fresh
      const messages = yield* redis.subscribe("t1:log")
      yield* redis.eval(scripts.append)(topic, "t1:log", "prices", "ep1", 1, bounds(), [
        { id: undefined, fields: "data: a\n\n" },
        { id: "mine", fields: "data: b\n\n" }
      ])
      expect(JSON.parse((yield* Queue.take(messages)).message).c).toEqual(["", "=mine"])
      expect(yield* redis.eval(scripts.findCallerId)(topic, "mine", 100)).toBe(2)
      expect(yield* redis.eval(scripts.findCallerId)(topic, "nope", 100)).toBe(null)
    }).pipe(Effect.scoped))

  it.live("trims by count, bytes and age, keeping the sequence numbers", () =>
    Effect.gen(function*() {
      const { redis } = yield* fresh
      const append = redis.eval(scripts.append)
      const read = redis.eval(scripts.read)
      const b = bounds({ maxEvents: 3 })
      yield* append(topic, "t1:log", "prices", "ep", 10, b, events("data: 1\n\n", "data: 2\n\n", "data: 3\n\n"))
      yield* append(topic, "t1:log", "prices", "ep", 20, b, events("data: 4\n\n", "data: 5\n\n"))
      const r = yield* read(topic, "x", 20, b, 0, 0, 100)
      // epoch, last seq, first retained seq, then [seq, caller id, frame]...
      expect(r).toEqual(["ep", 5, 3, 3, "", "data: 3\n\n", 4, "", "data: 4\n\n", 5, "", "data: 5\n\n"])

      // Age: entries 3, 4, 5 were written at 10 and 20; with maxAge 100 they are gone at 125.
      const aged = bounds({ maxAgeMillis: 100 })
      yield* append(topic, "t1:log", "prices", "ep", 60, aged, events("data: 6\n\n"))
      const r2 = yield* read(topic, "x", 125, aged, 0, 0, 100)
      expect(r2.slice(0, 3)).toEqual(["ep", 6, 6]) // the one written at 60 is not
      const r3 = yield* read(topic, "x", 161, aged, 0, 0, 100)
      expect(r3).toEqual(["ep", 6, 7]) // nothing retained: first retained = last + 1

      // Bytes: each "data: x\n\n" is 9 bytes plus the id line "id: ep-N\n" (9 bytes) = 18.
      const byBytes = bounds({ maxBytes: 40 })
      yield* append(topic, "t1:log", "prices", "ep", 200, byBytes, events("data: 7\n\n", "data: 8\n\n", "data: 9\n\n"))
      const r4 = yield* read(topic, "x", 200, byBytes, 0, 0, 100)
      expect(r4.slice(0, 3)).toEqual(["ep", 9, 8])
      expect(yield* redis.send("HGET", topic.meta, "b")).toBe("36")
    }).pipe(Effect.scoped))

  it.live("read returns a range, bounded by until and count", () =>
    Effect.gen(function*() {
      const { redis } = yield* fresh
      yield* redis.eval(scripts.append)(
        topic,
        "t1:log",
        "prices",
        "ep",
        1,
        bounds(),
        events("data: 1\n\n", "data: 2\n\n", "data: 3\n\n", "data: 4\n\n")
      )
      const read = redis.eval(scripts.read)
      expect(yield* read(topic, "x", 1, bounds(), 1, 3, 100)).toEqual([
        "ep",
        4,
        1,
        2,
        "",
        "data: 2\n\n",
        3,
        "",
        "data: 3\n\n"
      ])
      expect(yield* read(topic, "x", 1, bounds(), 0, 0, 1)).toEqual(["ep", 4, 1, 1, "", "data: 1\n\n"])
      expect(yield* read(topic, "x", 1, bounds(), 4, 0, 100)).toEqual(["ep", 4, 1])
    }).pipe(Effect.scoped))

  it.live("a lost stream gets a new epoch: after FLUSHALL, a lost stream key, a restart", () =>
    Effect.gen(function*() {
      const { redis, server } = yield* fresh
      const append = redis.eval(scripts.append)
      const read = redis.eval(scripts.read)
      yield* append(topic, "t1:log", "prices", "ep1", 1, bounds(), events("data: 1\n\n"))
      yield* redis.send("DEL", topic.log)
      expect(yield* append(topic, "t1:log", "prices", "ep2", 2, bounds(), events("data: 2\n\n"))).toEqual(["ep2", 1])
      yield* redis.send("FLUSHALL")
      expect((yield* read(topic, "ep3", 3, bounds(), 0, 0, 10)).slice(0, 3)).toEqual(["ep3", 0, 1])
      expect(yield* append(topic, "t1:log", "prices", "ep4", 4, bounds(), events("data: 3\n\n"))).toEqual(["ep3", 1])
      yield* server.restart
      const after = yield* read(topic, "ep5", 5, bounds(), 0, 0, 10).pipe(
        Effect.retry({ times: 100, schedule: Schedule.spaced("50 millis") }),
        Effect.catch(() => Effect.die("redis did not come back"))
      )
      expect(after).toEqual(["ep5", 0, 1])
    }).pipe(Effect.scoped))

  it.live("with no history kept, the stream stays (empty) and the epoch is stable", () =>
    Effect.gen(function*() {
      const { redis } = yield* fresh
      const none = bounds({ maxEvents: 0 })
      const append = redis.eval(scripts.append)
      yield* append(topic, "t1:log", "prices", "ep1", 1, none, events("data: 1\n\n"))
      expect(yield* append(topic, "t1:log", "prices", "ep2", 2, none, events("data: 2\n\n"))).toEqual(["ep1", 2])
      expect(yield* redis.eval(scripts.read)(topic, "x", 3, none, 0, 0, 10)).toEqual(["ep1", 2, 3])
    }).pipe(Effect.scoped))

  it.live("an idle topic expires with its ttl", () =>
    Effect.gen(function*() {
      const { redis } = yield* fresh
      yield* redis.eval(scripts.append)(
        topic,
        "t1:log",
        "prices",
        "ep1",
        1,
        bounds({ ttlMillis: 60_000 }),
        events("data: 1\n\n")
      )
      const ttl = yield* redis.send<number>("PTTL", topic.log)
      expect(ttl).toBeGreaterThan(50_000)
      expect(yield* redis.send<number>("PTTL", topic.meta)).toBeGreaterThan(50_000)
    }).pipe(Effect.scoped))
})
