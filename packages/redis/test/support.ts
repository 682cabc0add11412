import { SseEvent } from "@sluice/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import * as RedisConnection from "../src/RedisConnection.ts"
import * as RedisServer from "../src/testing/RedisServer.ts"

/** A client of `server` (sluice's layer) for the current scope. */
export const connect = (
  server: RedisServer.RedisServer
): Effect.Effect<Redis.Redis["Service"], RedisConnection.RedisUnavailableError, Scope.Scope> =>
  Effect.flatMap(
    Layer.build(RedisConnection.layer({ url: server.url })),
    (context) => Effect.provideContext(Redis.Redis, context)
  )

/** A fresh server and a client of it, for the current scope. */
export const fresh = Effect.gen(function*() {
  const server = yield* RedisServer.make()
  const redis = yield* connect(server)
  return { server, redis }
})

/** A `progress` event with `data` (what the registry tests send). */
export const ev = (data: string) => SseEvent.make({ event: "progress", data })

/** Close frames that say the reason as a `connection_close` event. */
export const closeFrames = (reason: string) => [SseEvent.make({ event: "connection_close", data: reason })]

/** What a client's text says: `progress` data as it is, other events as `type:data`. */
export const dataOf = (text: string) =>
  text.split("\n\n").filter((b) => b.length > 0).map((b) => {
    const type = /^event: (.*)$/m.exec(b)?.[1]
    const data = /^data: (.*)$/m.exec(b)?.[1] ?? ""
    return type === "progress" ? data : `${type}:${data}`
  })
