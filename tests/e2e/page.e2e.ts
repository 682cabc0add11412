// The demo page in a real browser: Debian's Chromium, headless, driven by
// playwright-core. The demo server runs as a child process (as `pnpm demo`),
// is stopped with SIGTERM and started again on the same port, and the page
// must reconnect on its own and resume the ticker with its last event id.
//
// Run with `pnpm test:e2e` (needs /usr/bin/chromium: `apt-get install chromium`).
// Screenshots go to tests/output/.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type DemoProcess, startDemo } from "../demo/DemoProcess.ts"

const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const output = fileURLToPath(new URL("../output/", import.meta.url))

let context: BrowserContext
let userDataDir: string
const servers: Array<DemoProcess> = []

beforeAll(async () => {
  mkdirSync(output, { recursive: true })
  userDataDir = mkdtempSync(join(tmpdir(), "sluice-e2e-chromium-"))
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ],
    viewport: { width: 1280, height: 860 },
    timeout: 30_000
  })
})

afterAll(async () => {
  await context?.close()
  for (const server of servers) await server.stop("SIGKILL").catch(() => undefined)
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true })
})

const demo = async (port?: number) => {
  const server = await startDemo({ port, env: { HEARTBEAT_MS: "1000" } })
  servers.push(server)
  return server
}

interface TickerRequest {
  readonly url: URL
  readonly lastEventIdHeader: string | undefined
}

/**
 * A fresh tab that records uncaught page errors and every ticker stream
 * request as it left the browser (URL and Last-Event-ID header).
 */
const openPage = async (url: string) => {
  const page = await context.newPage()
  const errors: Array<string> = []
  const tickerRequests: Array<TickerRequest> = []
  page.on("pageerror", (error) => errors.push(error.message))
  page.on("request", (request) => {
    const parsed = new URL(request.url())
    if (parsed.pathname !== "/api/ticker/stream") return
    void request.allHeaders().then((headers) =>
      tickerRequests.push({ url: parsed, lastEventIdHeader: headers["last-event-id"] })
    )
  })
  await page.goto(url, { timeout: 15_000 })
  return { page, errors, tickerRequests }
}

/** Reads a data-* attribute of the element with this test id. */
const attr = (page: Page, testId: string, name: string) =>
  page.getAttribute(`[data-testid="${testId}"]`, `data-${name}`, { timeout: 5_000 })

/** What a data-* attribute should become (no eval in the page: its CSP forbids it). */
type Expect =
  | { readonly eq: string }
  | { readonly atLeast: number }
  | { readonly above: number }
  | { readonly notPrefix: string }

/** Waits (at most `timeout` ms) until the element's data-* attribute meets `expected`. */
const waitAttr = (page: Page, testId: string, name: string, expected: Expect, timeout = 15_000) =>
  page.waitForFunction(
    ([id, key, want]) => {
      const value = document.querySelector(`[data-testid="${id}"]`)?.getAttribute(`data-${key}`) ?? null
      if (value === null) return false
      if ("eq" in want) return value === want.eq
      if ("atLeast" in want) return Number(value) >= want.atLeast
      if ("above" in want) return Number(value) > want.above
      return !value.startsWith(want.notPrefix)
    },
    [testId, name, expected] as const,
    { timeout, polling: 50 }
  )

const epochOf = (id: string | null) => (id ?? "").replace(/-\d+$/, "")

/**
 * Stops `server` with SIGTERM and waits until the page's ticker is waiting to
 * reconnect; returns the ticker's last event id at that point (no event can
 * arrive any more, so it is the id the browser will send).
 */
const stopAndAwaitReconnecting = async (page: Page, server: DemoProcess) => {
  const stopped = await server.stop("SIGTERM")
  expect(stopped.signal).toBe(null)
  await waitAttr(page, "conn-ticker", "state", { eq: "reconnecting" }, 10_000)
  const lastId = await attr(page, "conn-ticker", "last-id")
  expect(lastId).toMatch(/.+-\d+$/)
  return lastId!
}

/** After a restart: the ticker is open again, resumed from `lastId`, which the new server echoed in replay_gap. */
const expectResumed = async (page: Page, lastId: string, via: "header" | "query") => {
  await waitAttr(page, "conn-ticker", "reconnects", { atLeast: 1 }, 30_000)
  await waitAttr(page, "conn-ticker", "state", { eq: "open" }, 10_000)
  // The old id is from the previous server instance, hence "restarted".
  await waitAttr(page, "conn-ticker", "gap-reason", { eq: "restarted" }, 10_000)
  expect(await attr(page, "conn-ticker", "resume-id")).toBe(lastId)
  expect(await attr(page, "conn-ticker", "resume-via")).toBe(via)
  expect(await attr(page, "conn-ticker", "gap-last-id")).toBe(lastId)
  // Live events flow again, with ids of the new server instance.
  const count = Number(await attr(page, "ticker-count", "count"))
  await waitAttr(page, "ticker-count", "count", { above: count })
  await waitAttr(page, "conn-ticker", "last-id", { notPrefix: `${epochOf(lastId)}-` })
}

describe("demo page in Chromium", () => {
  it(
    "runs tasks and the chat, shows the ticker, and after a server restart resumes it with Last-Event-ID",
    async () => {
      const first = await demo()
      const { page, errors, tickerRequests } = await openPage(first.url)

      // All persistent streams connect; the version stream has said who it is.
      await waitAttr(page, "conn-version", "state", { eq: "open" })
      await waitAttr(page, "conn-ticker", "state", { eq: "open" })
      await page.waitForFunction(() => document.getElementById("version-version")?.textContent !== "–", undefined, {
        timeout: 10_000
      })

      // A task started from the page reaches 100% and its stream closes.
      await page.fill("[data-testid=task-steps]", "5")
      await page.fill("[data-testid=task-step-ms]", "100")
      await page.click("[data-testid=start-task]")
      const task = page.locator("[data-testid=task]").first()
      await task.waitFor({ timeout: 10_000 })
      await page.waitForSelector("[data-testid=task][data-status=completed][data-progress='100']", { timeout: 20_000 })
      expect(await task.locator("[data-role=pct]").textContent()).toBe("100%")
      expect(await task.locator("[data-role=fill]").evaluate((el) => (el as HTMLElement).style.width)).toBe("100%")
      await page.waitForSelector("[data-testid=task] [data-role=conn][data-state=closed][data-detail=task_completed]", {
        timeout: 5_000
      })

      // A failing task shows the failure.
      await page.fill("[data-testid=task-steps]", "4")
      await page.fill("[data-testid=task-fail-at]", "2")
      await page.fill("[data-testid=task-step-ms]", "50")
      await page.click("[data-testid=start-task]")
      await page.waitForSelector("[data-testid=task][data-status=failed][data-progress='50']", { timeout: 20_000 })
      expect(await page.locator("[data-testid=task]").count()).toBe(2)

      // The ticker table fills and keeps updating.
      await waitAttr(page, "ticker-count", "count", { atLeast: 3 })
      const seen = Number(await attr(page, "ticker-count", "count"))
      await waitAttr(page, "ticker-count", "count", { above: seen })
      expect(await page.locator("[data-testid=ticker-row]").count()).toBeGreaterThan(0)
      const firstPrice = await page.locator("[data-testid=ticker-row] [data-role=price]").first().textContent()
      expect(firstPrice).toMatch(/^\d[\d,]*\.\d\d$/)

      // Publishing from the page: it fetches the bearer token from the server
      // and the price comes back through the ticker stream.
      await page.fill("[data-testid=publish-ticker]", "E2E")
      await page.fill("[data-testid=publish-price]", "123.45")
      await page.click("[data-testid=publish]")
      await waitAttr(page, "publish-status", "state", { eq: "published" }, 10_000)
      await page.waitForSelector("[data-testid=ticker-row][data-ticker=E2E][data-price='123.45']", { timeout: 10_000 })

      // The chat streams an answer about the prompt, then closes.
      await page.fill("[data-testid=chat-prompt]", "backpressure")
      await page.click("[data-testid=chat-send]")
      await page.waitForSelector("[data-testid=chat-output][data-state=done]", { timeout: 15_000 })
      expect(await page.textContent("[data-testid=chat-output]")).toContain("backpressure")
      await waitAttr(page, "conn-chat", "detail", { eq: "completed" }, 5_000)

      await page.screenshot({ path: join(output, "demo-before-restart.png"), fullPage: true })

      // Restart the server on the same port; the browser reconnects on its own.
      const connectionBefore = await attr(page, "conn-ticker", "connection-id")
      const lastId = await stopAndAwaitReconnecting(page, first)
      const second = await demo(first.port)
      expect(second.port).toBe(first.port)
      await expectResumed(page, lastId, "header")
      expect(await attr(page, "conn-ticker", "connection-id")).not.toBe(connectionBefore)
      // The reconnect request itself carried the id, as a header.
      expect(tickerRequests.some((r) => r.lastEventIdHeader === lastId)).toBe(true)

      // The version stream came back too.
      await waitAttr(page, "conn-version", "reconnects", { atLeast: 1 }, 15_000)
      await waitAttr(page, "conn-version", "state", { eq: "open" }, 10_000)

      await page.screenshot({ path: join(output, "demo-after-restart.png"), fullPage: true })
      expect(errors).toEqual([])
      await page.close()
    },
    120_000
  )

  it("when the browser gives up on the ticker (an HTTP 503), the page reopens it with ?lastEventId=", async () => {
    const first = await demo()
    const { page, errors, tickerRequests } = await openPage(first.url)
    await waitAttr(page, "conn-ticker", "state", { eq: "open" })
    await waitAttr(page, "ticker-count", "count", { atLeast: 2 })

    // The next ticker request is answered 503: EventSource fails for good on
    // any status but 200, and does not retry by itself.
    let refuse = false
    await page.route("**/api/ticker/stream**", async (route) => {
      if (!refuse) return route.continue()
      refuse = false
      await route.fulfill({
        status: 503,
        contentType: "application/problem+json",
        body: JSON.stringify({ type: "about:blank", title: "Service Unavailable", status: 503 })
      })
    })
    const lastId = await stopAndAwaitReconnecting(page, first)
    refuse = true
    await demo(first.port)

    await expectResumed(page, lastId, "query")
    const resumed = tickerRequests.filter((r) => r.url.searchParams.get("lastEventId") === lastId)
    expect(resumed.length).toBeGreaterThan(0)
    expect(refuse).toBe(false)
    expect(errors).toEqual([])
    await page.close()
  }, 120_000)
})
