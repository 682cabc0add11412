/**
 * Scaling the demo out: with `REDIS_URL`, the ticker topic, the task streams
 * and the chat's resumable answers live in Redis, so several demo nodes
 * behind a load balancer share them (a price published on one node reaches
 * the pages on all of them; a task started on one streams to its client on
 * another; an answer generated on one resumes, and stops, from any other).
 * Without it, nothing is provided and the demo stays one process with no
 * external service.
 */
import type { Log, ResumableCoordinator } from "@sluice/core"
import { RedisConnection, RedisLog, RedisResumable } from "@sluice/redis"
import { Layer } from "effect"
import type { Redis } from "effect/persistence"

/**
 * `Log.Store`, the resumable answers' coordinator and Effect's `Redis`
 * service on `url`, or nothing. Fails when Redis cannot be reached at start.
 */
export const layer = (
  url: string | undefined
):
  | Layer.Layer<Log.Store | ResumableCoordinator.Coordinator | Redis.Redis, RedisConnection.RedisUnavailableError>
  | Layer.Layer<never> =>
  url === undefined
    ? Layer.empty
    : Layer.mergeAll(RedisLog.layer({ prefix: "sluice-demo" }), RedisResumable.layer({ prefix: "sluice-demo" })).pipe(
      Layer.provideMerge(RedisConnection.layer({ url }))
    )
