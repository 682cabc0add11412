// Attacks 2 and 3 at CI size, against the demo as a child process: a flood of
// streams past the server's limit, and many sockets that never send a
// request. Full size: `pnpm bench --full` (bench/overload).
import { describe, expect, it } from "vitest"
import { startDemo } from "../demo/DemoProcess.ts"
import { floodStreams, health, probeHealth, silentSockets } from "./attack.ts"

describe("overload: streams and sockets", () => {
  it(
    "a flood past the stream limit gets 503 with Retry-After; /health keeps answering and open streams keep flowing",
    async () => {
      const demo = await startDemo({
        env: { MAX_STREAMS: "300", MAX_STREAMS_PER_CLIENT: "1000", HEARTBEAT_MS: "1000" }
      })
      const probe = probeHealth(demo.port, 50)
      try {
        const flood = await floodStreams(demo.port, "/api/ticker/stream", 700, 100)
        const latency = await probe.stop()
        const refused = flood.refused.get(503) ?? []
        console.log(
          `streams: ${flood.open.length} open, ${refused.length} refused (503), ${flood.failed} failed; ` +
            `/health during the flood: ${latency.count} probes, p50 ${latency.p50.toFixed(1)} ms, ` +
            `p99 ${latency.p99.toFixed(1)} ms`
        )
        expect(flood.open.length).toBe(300)
        expect(refused.length).toBe(400)
        expect(flood.failed).toBe(0)
        for (const retryAfter of refused) expect(Number(retryAfter)).toBeGreaterThanOrEqual(1)
        // Every probe during the flood was answered.
        expect(latency.count).toBeGreaterThan(0)
        expect(latency.failed).toBe(0)
        // The streams admitted before the refusals still get their events
        // (ticker every 250 ms, heartbeats every second).
        const first = flood.open.slice(0, 20)
        const before = first.map((s) => flood.bytes.get(s) ?? 0)
        for (let i = 0; i < 100 && first.some((s, k) => (flood.bytes.get(s) ?? 0) <= before[k]!); i++) {
          await new Promise((r) => setTimeout(r, 50))
        }
        expect(first.every((s, k) => (flood.bytes.get(s) ?? 0) > before[k]!)).toBe(true)
        flood.close()
      } finally {
        await probe.stop()
        await demo.stop()
      }
    },
    90_000
  )

  it(
    "1 500 silent sockets against a cap of 400: silent ones make room, the socket count stays under the cap, " +
      "and /health answers throughout",
    async () => {
      const demo = await startDemo({ env: { MAX_STREAMS: "300", MAX_SOCKETS: "400" } })
      const probe = probeHealth(demo.port, 50)
      try {
        const silent = await silentSockets(demo.port, 1_500, 200)
        const latency = await probe.stop()
        const after = await health(demo.port)
        console.log(
          `sockets: ${silent.sockets.length} connected, ${silent.closedByServer()} closed by the server; ` +
            `/health: ${latency.count} probes, p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms; ` +
            `guard ${JSON.stringify(after.body.sockets)}`
        )
        expect(latency.failed).toBe(0)
        expect(after.status).toBe(200)
        const guard = after.body.sockets
        expect(guard.maxSockets).toBe(400)
        expect(guard.open).toBeLessThanOrEqual(400)
        expect(guard.evictedSilent).toBeGreaterThanOrEqual(1_500 - 400)
        // The client side sees the closes a little later.
        for (let i = 0; i < 200 && silent.closedByServer() < 1_500 - 400; i++) {
          await new Promise((r) => setTimeout(r, 25))
        }
        expect(silent.closedByServer()).toBeGreaterThanOrEqual(1_500 - 400)
        silent.close()
      } finally {
        await probe.stop()
        await demo.stop()
      }
    },
    90_000
  )
})
