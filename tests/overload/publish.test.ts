// Attack 5 (an open, unmetered, CSRF-able publish route, and a log line per
// request), against the demo as a child process; with the chat's prompt
// truncation and the page's session route.
import { describe, expect, it } from "vitest"
import { startDemo } from "../demo/DemoProcess.ts"
import { pool, post } from "./attack.ts"

const update = JSON.stringify({ ticker: "ACME", price: 101.5 })
const lines = (text: string, needle: string) => text.split("\n").filter((l) => l.includes(needle)).length

describe("overload: the demo's write routes", () => {
  it(
    "text/plain is 415, no or a wrong token is 401, the right token is 202, then the client's rate gives 429",
    async () => {
      const demo = await startDemo({ env: { DEMO_PUBLISH_TOKEN: "s3cret-token", DEMO_PUBLISH_RATE: "0.5" } })
      try {
        const path = "/api/ticker/publish"
        const auth = { authorization: "Bearer s3cret-token" }
        // A "simple" cross-origin request (what any web page can send without a preflight).
        const plain = await post(demo.port, path, update, { "content-type": "text/plain" })
        expect(plain.status).toBe(415)
        expect(plain.headers.get("content-type")).toBe("application/problem+json")
        expect(plain.body).toMatchObject({ status: 415, title: "Unsupported Media Type" })
        expect((await post(demo.port, path, update, { "content-type": "text/plain", ...auth })).status).toBe(415)
        expect(
          (await post(demo.port, "/api/tasks", JSON.stringify({ steps: 1 }), {
            "content-type": "application/x-www-form-urlencoded"
          })).status
        ).toBe(415)

        const anonymous = await post(demo.port, path, update, { "content-type": "application/json" })
        expect(anonymous.status).toBe(401)
        expect(anonymous.headers.get("www-authenticate")).toMatch(/^Bearer/)
        expect(anonymous.body.detail).toContain("Authorization: Bearer")
        const wrong = await post(demo.port, path, update, {
          "content-type": "application/json",
          authorization: "Bearer guess"
        })
        expect(wrong.status).toBe(401)

        const ok = await post(demo.port, path, update, { "content-type": "application/json; charset=utf-8", ...auth })
        expect(ok.status).toBe(202)
        expect(typeof ok.body.id).toBe("string")

        // One publish every 2 s, bursts of 2: a quick series runs out.
        const started = performance.now()
        const series = await pool(
          Array.from({ length: 8 }),
          1,
          () => post(demo.port, path, update, { "content-type": "application/json", ...auth })
        )
        const limited = series.filter((a) => a.status === 429)
        const refilled = Math.ceil(((performance.now() - started) / 1000) * 0.5)
        expect(series.filter((a) => a.status === 202).length).toBeLessThanOrEqual(1 + refilled)
        expect(limited.length).toBeGreaterThanOrEqual(7 - refilled)
        for (const a of limited) expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      } finally {
        await demo.stop()
      }
    },
    60_000
  )

  it("without DEMO_PUBLISH_TOKEN a random token is printed at start-up and served to the page", async () => {
    const demo = await startDemo()
    try {
      const session = await fetch(`${demo.url}/api/session`)
      expect(session.headers.get("cache-control")).toBe("no-store")
      expect(session.headers.get("access-control-allow-origin")).toBe(null)
      const { publishToken } = (await session.json()) as { publishToken: string }
      expect(publishToken.length).toBeGreaterThanOrEqual(20)
      expect(demo.output()).toContain(publishToken)
      const ok = await post(demo.port, "/api/ticker/publish", update, {
        "content-type": "application/json",
        authorization: `Bearer ${publishToken}`
      })
      expect(ok.status).toBe(202)
    } finally {
      await demo.stop()
    }
  }, 60_000)

  it("requests are not logged one by one unless LOG_REQUESTS=1", async () => {
    const flood = async (port: number) => {
      await pool(
        Array.from({ length: 50 }),
        5,
        () => post(port, "/api/ticker/publish", update, { "content-type": "application/json" })
      )
      await fetch(`http://127.0.0.1:${port}/health`)
    }
    const quiet = await startDemo()
    try {
      await flood(quiet.port)
      expect(lines(quiet.output(), "Sent HTTP response")).toBe(0)
    } finally {
      await quiet.stop()
    }
    const chatty = await startDemo({ env: { LOG_REQUESTS: "1" } })
    try {
      await flood(chatty.port)
      for (let i = 0; i < 100 && lines(chatty.output(), "Sent HTTP response") < 51; i++) {
        await new Promise((r) => setTimeout(r, 20))
      }
      expect(lines(chatty.output(), "Sent HTTP response")).toBeGreaterThanOrEqual(51)
    } finally {
      await chatty.stop()
    }
  }, 60_000)
})
