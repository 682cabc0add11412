/**
 * A tour of the connection actor, runnable with `pnpm demo` (until the demo
 * server lands): three connections, each ending a different way, with their
 * outcomes printed as values.
 */
import { Connection, Sink, SseEvent } from "@sluice/core"
import { Effect, Schedule, Stream } from "effect"

const stdout: Sink.Sink = (chunk) => Effect.sync(() => void process.stdout.write(chunk))

const ticks = Stream.fromSchedule(Schedule.spaced("200 millis")).pipe(
  Stream.map((n) => SseEvent.make({ id: String(n + 1), event: "tick", data: JSON.stringify({ n }) })),
  Stream.take(5)
)

// A client that goes away after two writes.
let writes = 0
const flaky: Sink.Sink = (chunk) =>
  ++writes > 2 ? Effect.fail(new Sink.WriteError({ reason: "closed", detail: "client went away" })) : stdout(chunk)

const program = Effect.gen(function*() {
  console.log("--- 1. a producer that completes: every event, then the end")
  console.log(yield* Connection.run({ producer: ticks, sink: stdout }))

  console.log("\n--- 2. a producer that fails: buffered events, then one safe error event")
  const failing = Stream.concat(Stream.take(ticks, 2), Stream.fail(new Error("upstream broke")))
  const failed = yield* Connection.run({ producer: failing, sink: stdout })
  console.log({ ...failed, cause: "(kept on the server)" })

  console.log("\n--- 3. a client that goes away: the producer is interrupted, nothing leaks")
  const endless = Stream.fromSchedule(Schedule.spaced("100 millis")).pipe(
    Stream.map((n) => SseEvent.make({ id: String(n + 1), data: `event ${n + 1}` }))
  )
  console.log(yield* Connection.run({ producer: endless, sink: flaky, heartbeat: "1 second" }))
})

Effect.runPromise(program)
