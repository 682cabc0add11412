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
let page: Page
let userDataDir: string
const servers: Array<DemoProcess> = []
const pageErrors: Array<string> = []

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
  page = context.pages()[0] ?? (await context.newPage())
  page.on("pageerror", (error) => pageErrors.push(error.message))
})

afterAll(async () => {
  await context?.close()
  for (const server of servers) await server.stop("SIGKILL").catch(() => undefined)
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true })
})

/** Reads a data-* attribute of the element with this test id. */
const attr = (testId: string, name: string) =>
  page.getAttribute(`[data-testid="${testId}"]`, `data-${name}`, { timeout: 5_000 })

/** What a data-* attribute should become (no eval in the page: its CSP forbids it). */
type Expect =
  | { readonly eq: string }
  | { readonly atLeast: number }
  | { readonly above: number }
  | { readonly notPrefix: string }

/** Waits (at most `timeout` ms) until the element's data-* attribute meets `expected`. */
const waitAttr = (testId: string, name: string, expected: Expect, timeout = 15_000) =>
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

describe("demo page in Chromium", () => {
  it("runs a task to 100%, shows the ticker and chat, and resumes the ticker after a server restart", async () => {
    const first = await startDemo({ env: { HEARTBEAT_MS: "1000" } })
    servers.push(first)
    await page.goto(first.url, { timeout: 15_000 })

    // All persistent streams connect; the version stream has said who it is.
    await waitAttr("conn-version", "state", { eq: "open" })
    await waitAttr("conn-ticker", "state", { eq: "open" })
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
    await page.waitForSelector("[data-testid=task][data-status=failed]", { timeout: 20_000 })
    expect(await page.locator("[data-testid=task]").count()).toBe(2)

    // The ticker table fills and keeps updating.
    await waitAttr("ticker-count", "count", { atLeast: 3 })
    const seen = Number(await attr("ticker-count", "count"))
    await waitAttr("ticker-count", "count", { above: seen })
    expect(await page.locator("[data-testid=ticker-row]").count()).toBeGreaterThan(0)
    const firstPrice = await page.locator("[data-testid=ticker-row] [data-role=price]").first().textContent()
    expect(firstPrice).toMatch(/^\d[\d,]*\.\d\d$/)

    // The chat streams an answer about the prompt, then closes.
    await page.fill("[data-testid=chat-prompt]", "backpressure")
    await page.click("[data-testid=chat-send]")
    await page.waitForSelector("[data-testid=chat-output][data-state=done]", { timeout: 15_000 })
    expect(await page.textContent("[data-testid=chat-output]")).toContain("backpressure")
    await waitAttr("conn-chat", "detail", { eq: "completed" }, 5_000)

    await page.screenshot({ path: join(output, "demo-before-restart.png"), fullPage: true })

    // Restart the server on the same port.
    const connectionBefore = await attr("conn-ticker", "connection-id")
    const stopped = await first.stop("SIGTERM")
    expect(stopped.signal).toBe(null)
    // The page saw the shutdown close and waits to reconnect; no event comes now,
    // so its last event id is the one the browser will send.
    await waitAttr("conn-ticker", "state", { eq: "reconnecting" }, 10_000)
    const lastIdAtStop = await attr("conn-ticker", "last-id")
    expect(lastIdAtStop).toMatch(/.+-\d+$/)

    const second = await startDemo({ port: first.port, env: { HEARTBEAT_MS: "1000" } })
    servers.push(second)
    expect(second.port).toBe(first.port)

    // The page reconnects by itself and resumes from that id. The server's
    // replay_gap event echoes the id the reconnect request carried (the old id
    // is from the previous server instance, hence "restarted").
    await waitAttr("conn-ticker", "reconnects", { atLeast: 1 }, 30_000)
    await waitAttr("conn-ticker", "state", { eq: "open" }, 10_000)
    await waitAttr("conn-ticker", "gap-reason", { eq: "restarted" }, 10_000)
    expect(await attr("conn-ticker", "resume-id")).toBe(lastIdAtStop)
    expect(await attr("conn-ticker", "gap-last-id")).toBe(lastIdAtStop)
    expect(["header", "query"]).toContain(await attr("conn-ticker", "resume-via"))
    expect(await attr("conn-ticker", "connection-id")).not.toBe(connectionBefore)

    // Live events flow again, with ids of the new server instance.
    const afterRestart = Number(await attr("ticker-count", "count"))
    await waitAttr("ticker-count", "count", { above: afterRestart })
    await waitAttr("conn-ticker", "last-id", { notPrefix: `${epochOf(lastIdAtStop)}-` })

    // The version stream came back too.
    await waitAttr("conn-version", "reconnects", { atLeast: 1 }, 15_000)
    await waitAttr("conn-version", "state", { eq: "open" }, 10_000)

    await page.screenshot({ path: join(output, "demo-after-restart.png"), fullPage: true })
    expect(pageErrors).toEqual([])
  }, 120_000)
})
