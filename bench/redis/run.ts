/**
 * The Redis benchmark: a Redis-backed topic against the in-memory hub, measured in one run on
 * this machine, with one redis-server started here (127.0.0.1, a free port, no persistence).
 *
 *   node_modules/.bin/node --conditions=@sluice/source bench/redis/run.ts [--full]
 *
 * 1. Fan-out to 1 000 clients and paced p99 at 1 000 clients: the HTTP harness
 *    (`bench/http/run.ts --peers=sluice,sluice-redis --scenarios=fanout-1000,paced-1000`),
 *    the same route with its hub in memory (`sluice`) and over Redis (`sluice-redis`).
 * 2. Publish throughput on one topic, in process: 50 000 events published in runs of 100
 *    (8 runs in flight), to an in-memory hub and to a hub over Redis; events/s until every
 *    publish was recorded.
 * 3. Two nodes against one (indicative: everything shares this machine's cores): 1 000 SSE
 *    clients on one node, then 500 on each of two nodes, one node publishing 5 000 events;
 *    deliveries/s until every client has every event.
 *
 * Writes `bench/results/redis.md` (and prints it). Every wait is bounded.
 */
import { Hub } from "@sluice/core"
import { RedisConnection, RedisLog } from "@sluice/redis"
import { RedisServer } from "@sluice/redis/testing"
import { Effect, Exit, Layer, Scope } from "effect"
import { type ChildProcess, execFileSync, fork, spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"

const full = process.argv.includes("--full")
// `--only=http|publish|nodes`: one part (the report then has only that part).
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length)
const part = (name: string) => only === undefined || only === name
const root = fileURLToPath(new URL("../../", import.meta.url))
const node = `${root}node_modules/.bin/node`
const lines: Array<string> = []
const say = (line = "") => {
  lines.push(line)
  console.log(line)
}
const fmt = (n: number, digits = 3) => Number(n.toPrecision(digits)).toLocaleString("en-US")

const scope = Effect.runSync(Scope.make())
const server = await Effect.runPromise(Scope.provide(RedisServer.make(), scope))
const version = spawnSync(RedisServer.binary() ?? "redis-server", ["--version"], { encoding: "utf8" }).stdout.trim()
say(`# sluice on Redis: benchmark`)
say()
say(
  `${new Date().toISOString()}, Node ${process.version}, ${version.split(" ").slice(0, 3).join(" ")} on ` +
    `127.0.0.1 (no persistence), ${full ? "full" : "quick"} mode. One run on a machine shared with other work: ` +
    "compare the ratios, not the absolute figures."
)

// 1. The HTTP harness, sluice vs sluice-redis.
if (part("http")) {
  say()
  say("## Fan-out and paced latency at 1 000 clients (HTTP harness, same run)")
  execFileSync(node, [
    `${root}bench/http/run.ts`,
    "--peers=sluice,sluice-redis",
    "--scenarios=fanout-1000,paced-1000",
    ...(full ? ["--full"] : [])
  ], { stdio: "inherit", env: { ...process.env, REDIS_URL: server.url }, timeout: 30 * 60_000 })
  type Figures = Record<string, Record<string, Record<string, number>>>
  const http = JSON.parse(readFileSync(`${root}bench/results/tmp/latest.json`, "utf8")) as Figures
  const fig = (scenario: string, peer: string, key: string) => http[scenario]?.[peer]?.[key] ?? Number.NaN
  const fanMemory = fig("fanout-1000", "sluice", "deliveriesPerSec")
  const fanRedis = fig("fanout-1000", "sluice-redis", "deliveriesPerSec")
  const p99Memory = fig("paced-1000", "sluice", "p99Ms")
  const p99Redis = fig("paced-1000", "sluice-redis", "p99Ms")
  say()
  say("| figure | in memory (`sluice`) | over Redis (`sluice-redis`) | Redis / memory | target |")
  say("| --- | ---: | ---: | ---: | --- |")
  say(
    `| fan-out C=1000, deliveries/s | ${fmt(fanMemory)} | ${fmt(fanRedis)} | ${
      fmt(fanRedis / fanMemory, 2)
    }x | >= 0.7x |`
  )
  say(
    `| fan-out C=1000, p99 | ${fmt(fig("fanout-1000", "sluice", "p99Ms"))} ms | ${
      fmt(fig("fanout-1000", "sluice-redis", "p99Ms"))
    } ms | ${fmt(fig("fanout-1000", "sluice-redis", "p99Ms") / fig("fanout-1000", "sluice", "p99Ms"), 2)}x | |`
  )
  say(
    `| paced C=1000, p99 | ${fmt(p99Memory)} ms | ${fmt(p99Redis)} ms | ${
      p99Redis >= p99Memory ? `${fmt(p99Redis - p99Memory, 2)} ms more` : `${fmt(p99Memory - p99Redis, 2)} ms less`
    } | <= 5 ms more |`
  )
}

// 2. Publish throughput on one topic.
if (part("publish")) {
  const events = 50_000
  const run = 100
  const data = "x".repeat(100)
  const publishAll = (hub: Hub.Hub) =>
    Effect.gen(function*() {
      const start = performance.now()
      yield* Effect.forEach(Array.from({ length: events / run }), () =>
        Effect.forEach(Array.from({ length: run }), () =>
          Hub.publish(hub, { data }), {
          concurrency: "unbounded",
          discard: true
        }), { concurrency: 8, discard: true })
      return events / ((performance.now() - start) / 1000)
    })
  const logs = RedisLog.layer({ prefix: `bench-publish-${Date.now().toString(36)}` }).pipe(
    Layer.provide(RedisConnection.layer({ url: server.url }))
  )
  const services = await Effect.runPromise(Layer.buildWithScope(logs, scope))
  const rates = await Effect.runPromise(
    Effect.gen(function*() {
      const memory = yield* Hub.make({ history: { maxEvents: 1000 } })
      const redis = yield* Effect.provideContext(RedisLog.hub("publish", { history: { maxEvents: 1000 } }), services)
      // Warm-up, then alternate.
      yield* publishAll(memory)
      yield* publishAll(redis)
      const m: Array<number> = []
      const r: Array<number> = []
      for (let i = 0; i < (full ? 3 : 1); i++) {
        m.push(yield* publishAll(memory))
        r.push(yield* publishAll(redis))
      }
      const median = (xs: Array<number>) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)]!
      return { memory: median(m), redis: median(r) }
    }).pipe(Scope.provide(scope))
  )
  say()
  say("## Publish throughput, one topic (in process)")
  say()
  say(`${fmt(events)} events of 100 bytes published in runs of ${run}, 8 runs in flight; events/s until all recorded.`)
  say()
  say("| in memory | over Redis | Redis / memory | target |")
  say("| ---: | ---: | ---: | --- |")
  say(
    `| ${fmt(rates.memory)}/s | ${fmt(rates.redis)}/s | ${
      fmt(rates.redis / rates.memory, 2)
    }x | >= 50 000/s over Redis |`
  )
}

// 3. Two nodes vs one.
if (part("nodes")) {
  interface Started {
    readonly child: ChildProcess
    readonly port: number
  }
  const startNode = (prefix: string): Promise<Started> =>
    new Promise((resolve, reject) => {
      const child = fork(`${root}bench/redis/node.ts`, [], {
        execPath: node,
        execArgv: ["--conditions=@sluice/source", "--disable-warning=ExperimentalWarning"],
        env: { ...process.env, REDIS_URL: server.url, PREFIX: prefix },
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      const timer = setTimeout(() => reject(new Error("a bench node did not start within 60 s")), 60_000)
      child.once("message", (m: { port: number }) => {
        clearTimeout(timer)
        resolve({ child, port: m.port })
      })
    })

  // `n` SSE clients on `port`, each counting the events it received (blank lines).
  const clients = (port: number, n: number, counts: Array<number>) =>
    Promise.all(Array.from({ length: n }, () =>
      new Promise<Http.ClientRequest>((resolve) => {
        const i = counts.push(0) - 1
        const request = Http.get({ host: "127.0.0.1", port, path: "/events", agent: false }, (response) => {
          if (response.statusCode !== 200) throw new Error(`a client was answered ${response.statusCode}`)
          // Frames end with a blank line, which may straddle two chunks.
          let endedWithNewline = false
          response.on("data", (chunk: Buffer) => {
            let from = 0
            if (endedWithNewline && chunk[0] === 10) {
              counts[i]!++
              from = 1
            }
            let at = chunk.indexOf("\n\n", from)
            while (at !== -1) {
              counts[i]!++
              at = chunk.indexOf("\n\n", at + 2)
            }
            endedWithNewline = chunk[chunk.length - 1] === 10 && chunk[chunk.length - 2] !== 10
          })
          resolve(request)
        })
      })))

  const fanOutOver = async (
    nodes: ReadonlyArray<Started>,
    perNode: number,
    total: number,
    label: string
  ): Promise<number> => {
    const counts: Array<number> = []
    const requests = (await Promise.all(nodes.map((n) => clients(n.port, perNode, counts)))).flat()
    // Connected: each got its `retry:` frame.
    const deadline = Date.now() + 30_000
    while (counts.some((c) => c < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    const base = counts.map((c) => c)
    const start = performance.now()
    nodes[0]!.child.send({ publish: total, burst: 256 })
    const done = Date.now() + 30_000
    while (counts.some((c, i) => c - base[i]! < total) && Date.now() < done) await new Promise((r) => setTimeout(r, 5))
    const seconds = (performance.now() - start) / 1000
    for (const r of requests) r.destroy()
    const short = counts.filter((c, i) => c - base[i]! < total).length
    if (short > 0) {
      throw new Error(
        `${short} of ${counts.length} clients did not receive all ${total} events within 30 s (${
          JSON.stringify(
            nodes.map((_, k) =>
              counts.slice(k * perNode, (k + 1) * perNode).filter((c, i) => c - base[k * perNode + i]! < total).length
            )
          )
        } short per node, ${label}; e.g. ${
          JSON.stringify(counts.map((c, i) => c - base[i]!).filter((n) => n < total).slice(0, 5))
        })`
      )
    }
    const received = counts.reduce((a, c, i) => a + c - base[i]!, 0)
    return received / seconds
  }
  const total = full ? 20_000 : 5_000
  const prefix = `bench-nodes-${Date.now().toString(36)}`
  const [a, b] = await Promise.all([startNode(prefix), startNode(prefix)])
  const one = await fanOutOver([a], 1_000, total, "one node")
  const two = await fanOutOver([a, b], 500, total, "two nodes")
  a.child.disconnect()
  b.child.disconnect()
  say()
  say("## Two nodes against one (indicative)")
  say()
  say(
    `1 000 clients, ${fmt(total)} events published on the first node; all processes (Redis, the nodes, the clients) ` +
      "share this machine's 2 cores."
  )
  say()
  say("| one node (1 000 clients) | two nodes (500 + 500) | two / one |")
  say("| ---: | ---: | ---: |")
  say(`| ${fmt(one)} deliveries/s | ${fmt(two)} deliveries/s | ${fmt(two / one, 2)}x |`)
}

await Effect.runPromise(Scope.close(scope, Exit.void))
writeFileSync(`${root}bench/results/redis.md`, lines.join("\n") + "\n")
console.log(`\nwritten to bench/results/redis.md`)
process.exit(0)
