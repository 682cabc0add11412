// Attack 1 (memory from small requests), at CI size: the demo as a child
// process, flooded with task creations whose progress nobody reads. Full
// size: `pnpm bench --full` (bench/overload).
import { describe, expect, it } from "vitest"
import { startDemo } from "../demo/DemoProcess.ts"
import { memoryOf, pool, post } from "./attack.ts"

const json = { "content-type": "application/json" }
const heavy = JSON.stringify({ steps: 1_000, stepMs: 0 })

describe("overload: task floods", () => {
  it(
    "with the per-client caps off, 1 500 creations of 1 000-step tasks stay within the registry budget: " +
      "refusals are 503 with Retry-After, and the server grows by less than 160 MB",
    async () => {
      const demo = await startDemo({
        env: { DEMO_TASK_RATE: "0", DEMO_MAX_TASKS: "0", DEMO_PENDING_BYTES: String(8 * 1024 * 1024) }
      })
      try {
        const before = memoryOf(demo.pid)
        const answers = await pool(Array.from({ length: 1_500 }), 16, () => post(demo.port, "/api/tasks", heavy, json))
        const by = (status: number) => answers.filter((a) => a.status === status)
        expect(by(201).length + by(503).length).toBe(answers.length)
        // The budget ran out long before 1 500 tasks × 1 000 events (~500 MB).
        expect(by(503).length).toBeGreaterThan(0)
        for (const refused of by(503)) {
          expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
          expect(refused.body.detail).toContain("budget")
        }
        // Every task ran to its end (completed, or failed when the budget
        // was spent): all the memory it will ever take is taken now.
        let health: any
        for (let i = 0; i < 600; i++) {
          health = (await fetch(`${demo.url}/health`).then((r) => r.json())) as any
          if (health.tasks.running === 0) break
          await new Promise((r) => setTimeout(r, 100))
        }
        expect(health.tasks.running).toBe(0)
        // The budget, plus at most one terminal event per task (those always get in).
        expect(health.tasks.pending.pendingBytes).toBeLessThanOrEqual(8 * 1024 * 1024 + by(201).length * 1_024)
        expect(health.tasks.pending.refusedBudget).toBeGreaterThan(0)
        const after = memoryOf(demo.pid)
        console.log(
          `tasks: ${by(201).length} created, ${by(503).length} refused (503); ` +
            `RSS ${(before.rss / 2 ** 20).toFixed(0)} -> ${(after.rss / 2 ** 20).toFixed(0)} MiB, ` +
            `peak ${(after.peak / 2 ** 20).toFixed(0)} MiB`
        )
        expect(after.peak - before.rss).toBeLessThan(160 * 2 ** 20)
      } finally {
        await demo.stop()
      }
    },
    120_000
  )

  it("with the defaults, one client gets its burst of tasks, then 429 with Retry-After", async () => {
    const demo = await startDemo()
    try {
      const light = JSON.stringify({ steps: 1, stepMs: 60_000 })
      const answers = await pool(Array.from({ length: 60 }), 4, () => post(demo.port, "/api/tasks", light, json))
      const created = answers.filter((a) => a.status === 201).length
      const limited = answers.filter((a) => a.status === 429)
      // A burst of 4 s worth at 5/s, and at most 20 running tasks per client.
      expect(created).toBeGreaterThanOrEqual(1)
      expect(created).toBeLessThanOrEqual(21)
      expect(created + limited.length).toBe(60)
      for (const a of limited) {
        expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
        expect(a.headers.get("content-type")).toBe("application/problem+json")
      }
    } finally {
      await demo.stop()
    }
  }, 60_000)
})
