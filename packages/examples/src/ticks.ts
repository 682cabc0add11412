/**
 * A complete SSE route: `node --conditions=@sluice/source src/ticks.ts`, then
 * `curl -N http://127.0.0.1:8080/ticks` (stop and rerun with -H "Last-Event-ID: 5").
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { SseEvent } from "@sluice/core"
import { SseResponse, SseServer } from "@sluice/http"
import { Layer, Schedule, Stream } from "effect"
import { HttpRouter } from "effect/http"
import { createServer } from "node:http"

const Ticks = HttpRouter.add(
  "GET",
  "/ticks",
  SseResponse.stream(({ lastEventId }) =>
    Stream.iterate(Number(lastEventId ?? 0) + 1, (n) => n + 1).pipe(
      Stream.schedule(Schedule.spaced("1 second")),
      Stream.map((n) => SseEvent.make({ id: String(n), event: "tick", data: JSON.stringify({ n }) }))
    )
  )
)

HttpRouter.serve(Ticks).pipe(
  SseServer.withGracefulShutdown,
  Layer.provide(SseServer.layer({ maxConnections: 10_000, shutdownTimeout: "5 seconds" })),
  Layer.provide(NodeHttpServer.layer(createServer, { port: Number(process.env.PORT ?? 8080), host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
