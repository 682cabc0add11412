/**
 * Background tasks whose progress streams to `GET /api/tasks/:id/stream`,
 * one live client per task (a keyed registry): progress sent before anyone
 * connects waits, a second client replaces the first, and the task's last
 * event closes the stream with `task_completed` or `task_failed`.
 *
 * Bounded for a public server: each client runs at most `maxPerClient` tasks
 * at once, the waiting events of all tasks share the registry's byte budget
 * (a task whose progress no longer fits ends with `task_failed`, and a new
 * task that does not fit is refused), and finished task ids are forgotten
 * once the registry has forgotten their outcome.
 */
import { Registry, SseEvent } from "@sluice/core"
import { RedisRegistry } from "@sluice/redis"
import { Clock, Context, Data, Effect, FiberSet, Layer, Option, Schema } from "effect"
import { Redis } from "effect/persistence"

export const CreateTask = Schema.Struct({
  steps: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000 })),
  failAt: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000 }))),
  stepMs: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60_000 })))
})
export type CreateTask = typeof CreateTask.Type

type EventType = "progress_update" | "task_completed" | "task_failed"

/** How long a task's waiting events, and a finished task's outcome, are kept. */
const keepMillis = 10 * 60 * 1000

/** The client already runs its share of tasks. */
export class TooManyTasksError extends Data.TaggedError("TooManyTasksError")<{ readonly limit: number }> {
  override get message(): string {
    return `this client already runs ${this.limit} tasks; wait for one to finish`
  }
}

export interface Options {
  /** Running tasks per client; 0 for no limit. */
  readonly maxPerClient: number
  /** Budget of the registry's waiting events, in bytes. */
  readonly pendingBytes: number
}

export class Tasks extends Context.Service<Tasks, {
  readonly registry: Registry.Registry
  readonly start: (
    spec: CreateTask,
    client: string
  ) => Effect.Effect<
    string,
    TooManyTasksError | Registry.PendingBudgetError | Registry.TooManyKeysError | Registry.RegistryUnavailableError
  >
  /** Task ids the server still knows (running, or finished and remembered). */
  readonly known: Effect.Effect<number>
  /** Tasks running now. */
  readonly running: Effect.Effect<number>
}>()("demo/Tasks") {
  static readonly layer = (options: Options) =>
    Layer.effect(
      Tasks,
      Effect.gen(function*() {
        // Task id -> when it may be forgotten (Infinity while it runs).
        const known = new Map<string, number>()
        // Finished ids in the order they may be forgotten (the delay is fixed).
        const forgettable: Array<{ readonly id: string; readonly at: number }> = []
        const prune = (now: number) => {
          let n = 0
          while (n < forgettable.length && forgettable[n]!.at <= now) known.delete(forgettable[n++]!.id)
          if (n > 0) forgettable.splice(0, n)
        }
        const shared = {
          // A task's events wait up to 10 minutes for a client; after the end,
          // a returning client still learns the outcome for that long.
          pending: { capacity: 1_000, ttl: keepMillis },
          exists: (key: string) =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              prune(now)
              return known.has(key)
            })
        }
        // In Redis when there is one (REDIS_URL): any node streams any task;
        // each task's outbox is bounded there by its capacity and ttl.
        const redis = yield* Effect.serviceOption(Redis.Redis)
        const registry = Option.isSome(redis)
          ? yield* RedisRegistry.make({ ...shared, name: "demo-tasks" }).pipe(
            Effect.provideService(Redis.Redis, redis.value),
            // Redis answered the connection layer a moment ago: a subscription it refuses stops the demo.
            Effect.orDie
          )
          : yield* Registry.make({ ...shared, budget: { maxBytes: options.pendingBytes, strategy: "fail" } })
        const running = yield* FiberSet.make()
        const perClient = new Map<string, number>()
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
            ))

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
          }).pipe(
            // The server has no room left for this task's progress: end it
            // with a reason rather than losing events silently (a terminal
            // event always gets in).
            Effect.catchTag(
              "PendingBudgetError",
              () => send(id, "task_failed", "The server ran out of room for waiting progress events", 0, "task_failed")
            ),
            Effect.asVoid,
            Effect.orDie
          )

        const finished = (id: string, client: string) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Effect.sync(() => {
              const n = (perClient.get(client) ?? 1) - 1
              if (n <= 0) perClient.delete(client)
              else perClient.set(client, n)
              known.set(id, now + keepMillis)
              forgettable.push({ id, at: now + keepMillis })
              prune(now)
            }))

        return Tasks.of({
          registry,
          known: Effect.map(Clock.currentTimeMillis, (now) => {
            prune(now)
            return known.size
          }),
          running: FiberSet.size(running),
          start: (spec, client) =>
            Effect.gen(function*() {
              const mine = perClient.get(client) ?? 0
              if (options.maxPerClient > 0 && mine >= options.maxPerClient) {
                return yield* new TooManyTasksError({ limit: options.maxPerClient })
              }
              const id = `t${++next}-${Math.random().toString(36).slice(2, 8)}`
              // Refused by the budget or the key limit: nothing was started or kept.
              yield* send(id, "progress_update", `Queued: ${spec.steps} steps`, 0).pipe(
                Effect.catchTag(["InvalidEventError", "KeyClosedError", "PendingFullError"], Effect.die)
              )
              known.set(id, Number.POSITIVE_INFINITY)
              perClient.set(client, mine + 1)
              yield* FiberSet.run(running, Effect.ensuring(run(id, spec), finished(id, client)))
              return id
            })
        })
      })
    )
}
