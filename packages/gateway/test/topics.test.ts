/**
 * Topic mode over HTTP: JWT rights (HS256 and RS256; allowed, refused,
 * expired, forged), multi-topic subscriptions resumed with one
 * Last-Event-ID, and a stream that ends when its token expires.
 */
import { describe, expect, it } from "@effect/vitest"
import { TestClient } from "@sluice/http/testing"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { generateKeyPairSync } from "node:crypto"
import type { Config } from "../src/Config.ts"
import { request } from "./support/backend.ts"
import { events, json, secret, startGateway } from "./support/gateway.ts"

const jwtSecret = "a-test-hs256-key-of-at-least-32-bytes!"
const hs = new TextEncoder().encode(jwtSecret)

const token = (claims: Record<string, unknown>, options: { expiresIn?: string | number; key?: Uint8Array } = {}) =>
  Effect.promise(() => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt()
    if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn)
    return jwt.sign(options.key ?? hs)
  })

const publish = (port: number, body: unknown, bearer?: string, contentType = "application/json") =>
  request(`http://127.0.0.1:${port}/publish`, {
    method: "POST",
    headers: {
      "content-type": contentType,
      ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` })
    },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

const withJwt = (overrides: Partial<Config> = {}) => startGateway({ jwtSecret, ...overrides })

describe("topic mode: JWT rights", () => {
  it.live("a publisher may publish to the topics its token lists (exact and patterns), and nothing else", () =>
    Effect.gen(function*() {
      const { port } = yield* withJwt()
      const jwt = yield* token({ publish: ["news", "chat/*"] })
      expect((yield* publish(port, { topic: "news", data: "a" }, jwt)).status).toBe(200)
      expect((yield* publish(port, { topic: "chat/lobby", data: "b" }, jwt)).status).toBe(200)
      const refused = yield* publish(port, { topic: ["chat/x", "admin"], data: "c" }, jwt)
      expect(refused.status).toBe(403)
      expect(refused.json).toMatchObject({ status: 403, title: "Forbidden" })
      expect(refused.json.detail).toMatch(/admin/)
      // The application itself publishes with the gateway secret.
      expect((yield* publish(port, { topic: "admin", data: "d" }, secret)).status).toBe(200)
    }))

  it.live("expired, forged, malformed and missing publisher tokens get 401 problems", () =>
    Effect.gen(function*() {
      const { port } = yield* withJwt()
      const expired = yield* token({ publish: ["*"] }, { expiresIn: Math.floor(Date.now() / 1000) - 10 })
      const forged = yield* token({ publish: ["*"] }, {
        key: new TextEncoder().encode("another-key-that-is-32-bytes-long!!")
      })
      const cases = [[expired, /expired/], [forged, /signature/], ["not.a.jwt", /malformed/], [
        undefined,
        /required/
      ]] as const
      for (const [jwt, detail] of cases) {
        const res = yield* publish(port, { topic: "news", data: "x" }, jwt)
        expect(res.status).toBe(401)
        expect(res.headers.get("www-authenticate")).toBe("Bearer")
        expect(res.json.detail).toMatch(detail)
      }
    }))

  it.live("a subscriber gets 403 before any event for a topic its token does not list; 401 when expired or forged", () =>
    Effect.gen(function*() {
      const { port } = yield* withJwt()
      const jwt = yield* token({ subscribe: ["chat/*"] })
      const refused = yield* request(`http://127.0.0.1:${port}/subscribe?topic=chat/a&topic=secret`, {
        headers: { authorization: `Bearer ${jwt}` }
      })
      expect(refused.status).toBe(403)
      expect(refused.headers.get("content-type")).toBe("application/problem+json")
      expect(refused.json.detail).toMatch(/secret/)
      const expired = yield* token({ subscribe: ["*"] }, { expiresIn: Math.floor(Date.now() / 1000) - 10 })
      const forged = yield* token({ subscribe: ["*"] }, {
        key: new TextEncoder().encode("another-key-that-is-32-bytes-long!!")
      })
      for (const bad of [expired, forged]) {
        const res = yield* request(`http://127.0.0.1:${port}/subscribe?topic=chat/a`, {
          headers: { authorization: `Bearer ${bad}` }
        })
        expect(res.status).toBe(401)
      }
      expect((yield* request(`http://127.0.0.1:${port}/subscribe?topic=chat/a`)).status).toBe(401)
      const metrics = yield* request(`http://127.0.0.1:${port}/metrics`)
      expect(String(metrics.json)).toMatch(/sluice_gateway_refusals_total\{[^}]*reason="topic_forbidden"/)
    }))

  it.live("a subscriber's token may come from a cookie (browsers)", () =>
    Effect.gen(function*() {
      const { port } = yield* withJwt()
      const jwt = yield* token({ subscribe: ["news"] })
      const client = yield* TestClient.open(port, "/subscribe?topic=news", { cookie: `other=1; sluice_token=${jwt}` })
      yield* client.awaitFrames(2)
      expect(client.status).toBe(200)
      yield* publish(port, { topic: "news", data: "hello", type: "headline" }, secret)
      yield* client.awaitFrames(3)
      expect(events(client)[1]).toMatchObject({ event: "headline", data: "hello" })
    }))

  it.live("RS256: a token signed with the private key is accepted; an HS256 token is not", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
      const pem = publicKey.export({ type: "spki", format: "pem" }).toString()
      const { port } = yield* startGateway({ jwtPublicKey: pem })
      const rs = yield* Effect.promise(() =>
        new SignJWT({ publish: ["t"] }).setProtectedHeader({ alg: "RS256" }).sign(privateKey)
      )
      expect((yield* publish(port, { topic: "t", data: "x" }, rs)).status).toBe(200)
      const hsToken = yield* token({ publish: ["t"] })
      const res = yield* publish(port, { topic: "t", data: "x" }, hsToken)
      expect(res.status).toBe(401)
    }))

  it.live(
    "the stream ends with connection_close token_expired when the subscriber's token expires",
    () =>
      Effect.gen(function*() {
        const { port } = yield* withJwt()
        const jwt = yield* token({ subscribe: ["t"] }, { expiresIn: Math.floor(Date.now() / 1000) + 2 })
        const client = yield* TestClient.open(port, "/subscribe?topic=t", { authorization: `Bearer ${jwt}` })
        yield* client.awaitFrames(2)
        yield* publish(port, { topic: "t", data: "before" }, secret)
        yield* client.ended
        const got = events(client)
        expect(got.map((e) => e.event)).toEqual(["connection_open", "message", "connection_close"])
        expect(json(got[2]!.data)).toMatchObject({ reason: "token_expired" })
      }),
    { timeout: 15_000 }
  )
})

describe("topic mode: one stream, several topics, one Last-Event-ID", () => {
  it.live("events of the named topics only, in publish order, an event on two of them once", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      const client = yield* TestClient.open(port, "/subscribe?topic=a&topic=b")
      yield* client.awaitFrames(2)
      yield* publish(port, [
        { topic: "a", data: "a1" },
        { topic: "c", data: "c1" },
        { topic: "b", data: "b1" },
        { topic: ["a", "b"], data: "ab1" },
        { topic: "a", data: "a2" }
      ], secret)
      yield* client.awaitFrames(6)
      expect(events(client).slice(1).map((e) => e.data)).toEqual(["a1", "b1", "ab1", "a2"])
    }))

  it.live("a reconnect with the last id gets exactly what it missed on every topic, then live events", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      const first = yield* TestClient.open(port, "/subscribe?topic=a&topic=b")
      yield* first.awaitFrames(2)
      const before = yield* publish(port, [{ topic: "a", data: "a1" }, { topic: "b", data: "b1" }], secret)
      yield* first.awaitFrames(4)
      const lastId = events(first)[2]!.id!
      expect(lastId).toBe(before.json.ids[1])
      first.destroy()
      // Missed while away: on a, on b, on neither, on both.
      yield* publish(port, [
        { topic: "b", data: "b2" },
        { topic: "c", data: "c1" },
        { topic: "a", data: "a2" },
        { topic: ["a", "b"], data: "ab" }
      ], secret)
      const second = yield* TestClient.open(port, "/subscribe?topic=b&topic=a", { "last-event-id": lastId })
      yield* second.awaitFrames(5)
      yield* publish(port, { topic: "a", data: "live" }, secret)
      yield* second.awaitFrames(6)
      const got = events(second)
      expect(got.slice(1).map((e) => e.data)).toEqual(["b2", "a2", "ab", "live"])
      // The ids say where the client stands; one resumes everything.
      expect(new Set(got.slice(1).map((e) => e.id)).size).toBe(4)
    }))

  it.live("the query parameter lastEventId works too (a browser's first request), and a foreign id gets replay_gap", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      const published = yield* publish(port, [{ topic: "a", data: "1" }, { topic: "a", data: "2" }], secret)
      const resumed = yield* TestClient.open(port, `/subscribe?topic=a&lastEventId=${published.json.ids[0]}`)
      yield* resumed.awaitFrames(3)
      expect(events(resumed).slice(1).map((e) => e.data)).toEqual(["2"])
      const foreign = yield* TestClient.open(port, "/subscribe?topic=a", { "last-event-id": "zzzzzz-5" })
      yield* foreign.awaitFrames(5)
      const got = events(foreign)
      expect(got[1]!.event).toBe("replay_gap")
      expect(json(got[1]!.data)).toEqual({ reason: "restarted", lastEventId: "zzzzzz-5" })
      expect(got.slice(2).map((e) => e.data)).toEqual(["1", "2"])
    }))

  it.live("publisher ids are kept and resume too; form-encoded publishes work", () =>
    Effect.gen(function*() {
      const { port } = yield* startGateway()
      const form = yield* publish(
        port,
        "topic=a&topic=b&data=hello&type=greeting&id=evt-1",
        secret,
        "application/x-www-form-urlencoded"
      )
      expect(form.json).toEqual({ id: "evt-1" })
      yield* publish(port, { topic: "b", data: "next" }, secret)
      const client = yield* TestClient.open(port, "/subscribe?topic=b", { "last-event-id": "evt-1" })
      yield* client.awaitFrames(3)
      expect(events(client)[1]).toMatchObject({ data: "next" })
    }))
})
