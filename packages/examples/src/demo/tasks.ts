/**
 * Background tasks whose progress streams to `GET /api/tasks/:id/stream`,
 * one live client per task (a keyed registry): progress sent before anyone
 * connects waits, a second client replaces the first, and the task's last
 * event closes the stream with `task_completed` or `task_failed`.
 */
import { Registry, SseEvent } from "@sluice/core"
import { Clock, Context, Effect, FiberSet, Layer, Schema } from "effect"

export const CreateTask = Schema.Struct({
  steps: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000 })),
  failAt: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000 }))),
  stepMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60_000 })))
})
export type CreateTask = typeof CreateTask.Type

type EventType = "progress_update" | "task_completed" | "task_failed"

export class Tasks extends Context.Service<Tasks, {
  readonly registry: Registry.Registry
  readonly start: (spec: CreateTask) => Effect.Effect<string>
}>()("demo/Tasks") {
  static readonly layer = Layer.effect(
    Tasks,
    Effect.gen(function*() {
      const known = new Set<string>()
      const registry = yield* Registry.make({
        // A task's events wait up to 10 minutes for a client; after the end,
        // a returning client still learns the outcome for that long.
        pending: { capacity: 1_000, ttl: "10 minutes" },
        exists: (key) => Effect.succeed(known.has(key))
      })
      const running = yield* FiberSet.make()
      let next = 0

      const send = (id: string, eventType: EventType, text: string, progress: number, terminal?: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Registry.send(
            registry,
            id,
            SseEvent.make({
              event: "task_event",
              data: JSON.stringify({
                event_type: eventType,
                task_id: id,
                timestamp: new Date(now).toISOString(),
                data: { text, progress }
              })
            }),
            terminal === undefined ? {} : { terminal }
          )).pipe(Effect.asVoid, Effect.orDie)

      const run = (id: string, spec: CreateTask) =>
        Effect.gen(function*() {
          const stepMs = spec.stepMs ?? 500
          for (let step = 1; step <= spec.steps; step++) {
            yield* Effect.sleep(stepMs)
            const progress = Math.round((step / spec.steps) * 100)
            if (step === spec.failAt) {
              return yield* send(id, "task_failed", `Step ${step} of ${spec.steps} failed`, progress, "task_failed")
            }
            if (step < spec.steps) yield* send(id, "progress_update", `Step ${step} of ${spec.steps} done`, progress)
          }
          yield* send(id, "task_completed", `All ${spec.steps} steps done`, 100, "task_completed")
        })

      return Tasks.of({
        registry,
        start: (spec) =>
          Effect.gen(function*() {
            const id = `t${++next}-${Math.random().toString(36).slice(2, 8)}`
            known.add(id)
            yield* send(id, "progress_update", `Queued: ${spec.steps} steps`, 0)
            yield* FiberSet.run(running, run(id, spec))
            return id
          })
      })
    })
  )
}
