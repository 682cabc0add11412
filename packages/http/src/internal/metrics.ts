/**
 * Every metric of `@sluice/http`, in one place (CONVENTIONS.md). The streams'
 * own counters (deliveries, drops, outcomes) are `@sluice/core`'s; these are
 * the server's: mailbox depths and the event-loop delay, read when metrics
 * are scraped, and refusals by scope and reason.
 *
 * @internal
 */
import * as Metric from "effect/Metric"

/** @internal */
export const mailboxDepth = Metric.gauge("sluice_mailbox_depth", {
  description: "Frames waiting in the mailboxes of all open SSE streams"
})

/** @internal */
export const mailboxDepthMax = Metric.gauge("sluice_mailbox_depth_max", {
  description: "Frames waiting in the fullest mailbox of an open SSE stream"
})

/** @internal */
export const limitRefusals = Metric.counter("sluice_connection_refusals_total", {
  description: "SSE requests refused by a connection limit, load (reason: event_loop_delay, heap, memory) or shutdown",
  incremental: true
})

/** @internal */
export const eventLoopDelay = Metric.gauge("sluice_event_loop_delay_seconds", {
  description: "Mean event-loop delay over the last load sample window (0 when load admission is off)"
})
