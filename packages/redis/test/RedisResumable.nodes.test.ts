// Resumable collections as nodes of one cluster on a real redis-server
// (RedisResumable + RedisLog, each node with its own connection), in one
// process: the detach policy counts clients on the other node, and a node
// that shuts down ends its streams at once for clients elsewhere.
import { describe, expect, it } from "@effect/vitest"
import { Resumable, SseEvent } from "@sluice/core"
import { TestSink } from "@sluice/core/testing"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisLog from "../src/RedisLog.ts"
import * as RedisResumable from "../src/RedisResumable.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"

const lease = 1_000
const closeFrames = (reason: string) => [SseEvent.make({ event: "connection_close", data: reason })]
const tokens = (text: string) => [...text.matchAll(/^event: token\ndata: (.*)$/gm)].map((m) => m[1])
const closeReason = (text: string) => /^event: connection_close\ndata: (.*)$/m.exec(text)?.[1]

/** A node: its own Redis connection, coordinator, log store and collection, in its own scope. */
const node = (server: RedisServer.RedisServer, name: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const cluster = Layer.mergeAll(
      RedisResumable.layer({ address: server.url, ping: "200 millis", timeout: "200 millis" }),
      RedisLog.layer({ address: server.url, positionCheck: "100 millis" })
    ).pipe(Layer.provide(RedisConnection.layer({ url: server.url })))
    const context = yield* Layer.build(cluster).pipe(Scope.provide(scope))
    const collection = yield* Resumable.make({ node: name, lease }).pipe(
      Effect.provide(context),
      Scope.provide(scope)
    )
    return { collection, close: Scope.close(scope, Exit.void) }
  })

/** A client attached in a scope of its own. */
const client = (collection: Resumable.Resumable, id: string) =>
  Effect.gen(function*() {
    const sink = yield* TestSink.make()
    const scope = yield* Scope.make()
    const attached = yield* Resumable.attach(collection, id, { sink: sink.sink, heartbeat: false, closeFrames }).pipe(
      Scope.provide(scope)
    )
    return { sink, attached, leave: Scope.close(scope, Exit.void) }
  })

/** Sends one token, then waits for `release`. */
const held = (release: Deferred.Deferred<void>) => (mailbox: Resumable.Sender) =>
  Effect.andThen(mailbox.send(SseEvent.make({ event: "token", data: "t1" })), Deferred.await(release))

describe("Resumable on Redis, two nodes in one process", () => {
  it.live("the detach policy: a client on B keeps A's producer going; once it left, the stream ends as stopped after the grace", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, "a")
      const b = yield* node(server, "b")
      const release = yield* Deferred.make<void>()
      yield* Resumable.start(a.collection, "s", held(release), { detachGrace: "600 millis" })
      const onB = yield* client(b.collection, "s")
      yield* onB.sink.awaitWrites(1)
      // Three graces with the client on B only: still running (B touches the state in Redis).
      const started = Date.now()
      while (Date.now() - started < 1_800) {
        yield* Effect.sleep("200 millis")
        expect(yield* Resumable.status(a.collection, "s")).toMatchObject({ _tag: "Running" })
      }
      yield* onB.leave
      const left = Date.now()
      // Nobody attached anywhere (an attach would count as a client): the status, polled.
      const status = yield* Resumable.status(b.collection, "s").pipe(
        Effect.filterOrFail((st) => st._tag === "Ended"),
        Effect.retry({ times: 200, schedule: Schedule.spaced("25 millis") })
      )
      // A client on another node is known by its touches (every grace/4): the grace runs from the last one.
      expect(Date.now() - left).toBeGreaterThanOrEqual(600 - 150 - 50)
      expect(status).toEqual({ _tag: "Ended", id: "s", end: { _tag: "Stopped", reason: "stopped", detached: true } })
    }))

  it.live("A shuts down: the client on B gets producer_lost at once (not a lease later), after every token", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const a = yield* node(server, "a")
      const b = yield* node(server, "b")
      yield* Resumable.start(a.collection, "s", held(yield* Deferred.make<void>()))
      const onB = yield* client(b.collection, "s")
      yield* onB.sink.awaitWrites(1)
      const closing = Date.now()
      yield* a.close
      yield* onB.attached.outcome.pipe(Effect.timeout("10 seconds"))
      expect(Date.now() - closing).toBeLessThan(lease)
      expect(tokens(onB.sink.text())).toEqual(["t1"])
      expect(closeReason(onB.sink.text())).toBe("producer_lost")
    }))
})
