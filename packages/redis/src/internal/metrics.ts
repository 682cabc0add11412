/**
 * The Redis package's metrics, in one place.
 *
 * @internal
 */
import * as Metric from "effect/Metric"

/** @internal */
export const appendCalls = Metric.counter("sluice_redis_append_calls_total", {
  description: "Script calls that appended a burst to a topic's stream",
  incremental: true
})

/** @internal */
export const appendFailures = Metric.counter("sluice_redis_append_failures_total", {
  description: "Appends that failed with a LogError, by reason (unavailable, timeout, full)",
  incremental: true
})

/** @internal */
export const fills = Metric.counter("sluice_redis_fills_total", {
  description: "Holes in a node's tail filled from the stream (a jump, a position check, a new subscription)",
  incremental: true
})

/** @internal */
export const missed = Metric.counter("sluice_redis_missed_total", {
  description: "Holes the stream no longer had when a node read them (reported to the hub as Missed)",
  incremental: true
})

/** @internal */
export const epochChanges = Metric.counter("sluice_redis_epoch_changes_total", {
  description: "Topics whose record was lost and started again with a new epoch, as seen by this node",
  incremental: true
})

/** @internal */
export const resubscriptions = Metric.counter("sluice_redis_resubscriptions_total", {
  description: "Pub/Sub subscriptions re-established after they failed or stopped answering pings",
  incremental: true
})

/** @internal */
export const keyedReplaced = Metric.counter("sluice_redis_keyed_replaced_total", {
  description: "Keyed connections on this node replaced by a newer connection for the same key (on any node)",
  incremental: true
})

/** @internal */
export const keyedPulls = Metric.counter("sluice_redis_keyed_pulls_total", {
  description: "Keyed outboxes read from Redis to catch up (a jump, a renewal, a new subscription)",
  incremental: true
})

/** @internal */
export const coordinatorNotifications = Metric.counter("sluice_redis_resumable_notifications_total", {
  description: "Stop requests, ends and removals of resumable streams heard on this process's subscription",
  incremental: true
})
