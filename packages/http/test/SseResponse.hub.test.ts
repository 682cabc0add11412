import { describe, expect, it } from "@effect/vitest"
import { Hub, Topics } from "@sluice/core"
import { Effect } from "effect"
import { HttpRouter } from "effect/http"
import { SseAuth, SseResponse } from "../src/index.ts"
import { open } from "../src/testing/TestClient.ts"
import { serve, until } from "../src/testing/TestServer.ts"

const dataOf = (events: ReadonlyArray<{ event: string; data: string }>) =>
  events.filter((e) => e.event === "message").map((e) => e.data)

describe("SseResponse.hub / topic", () => {
  it.live("live events, then replay by Last-Event-ID over HTTP with no gap and no duplicate", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ history: { maxEvents: 100 } })
      const { port } = yield* serve(HttpRouter.add("GET", "/hub", SseResponse.hub(hub)))
      const a = yield* open(port, "/hub")
      yield* a.awaitFrames(2)
      yield* until(() => hub.subscriberCount() === 1)
      const first = yield* Hub.publish(hub, { data: "one" })
      yield* Hub.publish(hub, { data: "two" })
      yield* Hub.publish(hub, { data: "three" })
      yield* a.awaitFrames(5)
      expect(dataOf(a.events())).toEqual(["one", "two", "three"])

      // A client that saw only "one" comes back with its id.
      const b = yield* open(port, "/hub", { "last-event-id": first.id })
      yield* b.awaitFrames(4)
      yield* until(() => hub.subscriberCount() === 2)
      yield* Hub.publish(hub, { data: "four" })
      yield* b.awaitFrames(5)
      yield* a.awaitFrames(6)
      expect(dataOf(b.events())).toEqual(["two", "three", "four"])
      expect(dataOf(a.events())).toEqual(["one", "two", "three", "four"])
      // ids are the hub's, and strictly increasing for every client
      const ids = b.events().filter((e) => e.event === "message").map((e) => e.id!)
      expect(new Set(ids).size).toBe(3)
    }))

  it.live("a refused client never receives an event of the hub and never becomes a subscriber", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make()
      const authorize = SseAuth.bearer((t) =>
        t === "ok"
          ? Effect.succeed("user")
          : Effect.fail(new SseAuth.ForbiddenError({ detail: "no access to this topic" }))
      )
      const { port } = yield* serve(HttpRouter.add("GET", "/hub", SseResponse.hub(hub, { authorize })))
      const allowed = yield* open(port, "/hub", { authorization: "Bearer ok" })
      yield* allowed.awaitFrames(2)
      const refused = yield* open(port, "/hub", { authorization: "Bearer no" })
      const anonymous = yield* open(port, "/hub")
      yield* Hub.publish(hub, { event: "secret", data: "classified" })
      yield* allowed.awaitFrames(3)
      yield* refused.ended
      yield* anonymous.ended
      expect([refused.status, anonymous.status]).toEqual([403, 401])
      expect(refused.text() + anonymous.text()).not.toContain("classified")
      expect(hub.subscriberCount()).toBe(1)
      expect(allowed.events().at(-1)).toMatchObject({ event: "secret", data: "classified" })
    }))

  it.live("topic routes pick the topic from the request; beyond the topic limit: 503", () =>
    Effect.gen(function*() {
      const topics = yield* Topics.make({ maxTopics: 1 })
      const { port } = yield* serve(HttpRouter.add(
        "GET",
        "/topics/:name",
        SseResponse.topic(topics, () => Effect.map(HttpRouter.params, (p) => p["name"] ?? ""))
      ))
      const chess = yield* open(port, "/topics/chess")
      yield* chess.awaitFrames(2)
      yield* Topics.publish(topics, "chess", { data: "e4" })
      yield* chess.awaitFrames(3)
      expect(dataOf(chess.events())).toEqual(["e4"])
      const go = yield* open(port, "/topics/go")
      yield* go.ended
      expect(go.status).toBe(503)
    }))
})
