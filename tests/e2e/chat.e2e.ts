// The demo's resumable chat in a real browser (Debian's Chromium, headless,
// driven by playwright-core): a reload in the middle of an answer shows it
// again and resumes exactly after the last token the page had; a second tab
// shows the whole answer; Stop ends it with `stopped`.
//
// Run with `pnpm test:e2e` (needs /usr/bin/chromium: `apt-get install chromium`).
import { TestClient } from "@sluice/http/testing"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type DemoProcess, startDemo } from "../demo/DemoProcess.ts"

const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

let context: BrowserContext
let userDataDir: string
let demo: DemoProcess

beforeAll(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), "sluice-e2e-chat-"))
  // Answers of several seconds: time to reload or stop in the middle.
  demo = await startDemo({ env: { HEARTBEAT_MS: "1000", DEMO_CHAT_PAUSE_MS: "250", DEMO_CHAT_RATE: "0" } })
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"],
    viewport: { width: 1280, height: 860 },
    timeout: 30_000
  })
})

afterAll(async () => {
  await context?.close()
  await demo?.stop("SIGTERM").catch(() => demo?.stop("SIGKILL"))
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true })
})

/** A tab that records page errors and the chat stream requests it makes. */
const openTab = async (url: string) => {
  const page = await context.newPage()
  const errors: Array<string> = []
  const streams: Array<URL> = []
  page.on("pageerror", (error) => errors.push(error.message))
  page.on("request", (request) => {
    const parsed = new URL(request.url())
    if (/^\/api\/chat\/[^/]+\/stream$/.test(parsed.pathname)) streams.push(parsed)
  })
  await page.goto(url, { timeout: 15_000 })
  return { page, errors, streams }
}

const attr = (page: Page, name: string) =>
  page.getAttribute("[data-testid=chat-output]", `data-${name}`, { timeout: 5_000 })

/** Waits until the chat output's data-* attribute satisfies `ok`. */
const waitOutput = (page: Page, name: string, want: { eq: string } | { atLeast: number }, timeout = 20_000) =>
  page.waitForFunction(
    ([key, w]) => {
      const value = document.querySelector("[data-testid=chat-output]")?.getAttribute(`data-${key}`) ?? null
      if (value === null) return false
      return "eq" in w ? value === w.eq : Number(value) >= w.atLeast
    },
    [name, want] as const,
    { timeout, polling: 25 }
  )

/** The whole answer as the server recorded it: every token's text, read over HTTP. */
const recorded = async (id: string): Promise<{ text: string; tokens: number; reason: string }> => {
  const response = await fetch(`${demo.url}/api/chat/${id}/stream`, { signal: AbortSignal.timeout(15_000) })
  const events = TestClient.parseFrames(await response.text())
  const tokens = events.filter((e) => e.event === "token").map((e) => (JSON.parse(e.data) as { text: string }).text)
  const close = events.find((e) => e.event === "connection_close")
  return { text: tokens.join(""), tokens: tokens.length, reason: close ? JSON.parse(close.data).reason : "" }
}

const ask = async (page: Page, prompt: string) => {
  await page.fill("[data-testid=chat-prompt]", prompt)
  await page.click("[data-testid=chat-send]")
  await waitOutput(page, "state", { eq: "streaming" }, 10_000)
  const id = await attr(page, "chat-id")
  expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/)
  return id!
}

describe("demo chat in Chromium", () => {
  it("a reload in the middle of an answer resumes it exactly; a second tab shows it whole", async () => {
    const { page, errors, streams } = await openTab(demo.url)
    const id = await ask(page, "reloading")
    await waitOutput(page, "tokens", { atLeast: 6 })
    expect(await attr(page, "state")).toBe("streaming")

    await page.reload({ timeout: 15_000 })
    // The page shows what it had at once, then resumes after its last token.
    expect(page.url()).toContain(`#chat=${id}`)
    await waitOutput(page, "state", { eq: "done" })
    expect(await attr(page, "reason")).toBe("completed")
    const resumedFrom = await attr(page, "resumed-from")
    expect(resumedFrom).toMatch(/^[0-9a-z]+-\d+$/)
    expect(streams.some((url) => url.searchParams.get("lastEventId") === resumedFrom)).toBe(true)
    await page.waitForSelector("[data-testid=conn-chat][data-state=closed][data-detail=completed]", {
      timeout: 5_000
    })

    const server = await recorded(id)
    expect(server.reason).toBe("completed")
    expect(await page.textContent("[data-testid=chat-output]")).toBe(server.text)
    expect(Number(await attr(page, "tokens"))).toBe(server.tokens)
    expect(server.text).toContain("reloading")

    // Another tab (nothing stored): the whole answer from the record.
    const second = await openTab(`${demo.url}/#chat=${id}`)
    await waitOutput(second.page, "state", { eq: "done" })
    expect(await second.page.textContent("[data-testid=chat-output]")).toBe(server.text)
    expect(second.streams[0]?.searchParams.get("lastEventId")).toBe(null)

    expect([...errors, ...second.errors]).toEqual([])
    await second.page.close()
    await page.close()
  }, 90_000)

  it("Stop ends the answer with stopped", async () => {
    const { page, errors } = await openTab(demo.url)
    const id = await ask(page, "stopping")
    await waitOutput(page, "tokens", { atLeast: 3 })
    await page.click("[data-testid=chat-stop]")
    await waitOutput(page, "reason", { eq: "stopped" })
    await page.waitForSelector("[data-testid=conn-chat][data-state=closed][data-detail=stopped]", { timeout: 5_000 })
    expect(await page.isDisabled("[data-testid=chat-stop]")).toBe(true)
    const server = await recorded(id)
    expect(server.reason).toBe("stopped")
    expect(await page.textContent("[data-testid=chat-output]")).toBe(server.text)
    expect(errors).toEqual([])
    await page.close()
  }, 60_000)
})
