/**
 * The gateway's metrics (rendered on `/metrics` with sluice's own).
 *
 * @internal
 */
import * as Metric from "effect/Metric"

/** @internal */
export const refusals = Metric.counter("sluice_gateway_refusals_total", {
  description: "Requests refused with a 4xx/5xx problem-details answer, by route and reason",
  incremental: true
})

/** @internal */
export const callbacks = Metric.counter("sluice_gateway_callbacks_total", {
  description: "Callbacks to the application, by action (connect, disconnect) and result",
  incremental: true
})

/** @internal */
export const callbackSeconds = Metric.histogram("sluice_gateway_callback_duration_seconds", {
  description: "Time the application took to answer a callback",
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
})

/** @internal */
export const sends = Metric.counter("sluice_gateway_sends_total", {
  description: "Events accepted on /internal/send, by result (delivered, pending, dropped, closed)",
  incremental: true
})

/** @internal */
export const published = Metric.counter("sluice_gateway_published_total", {
  description: "Events published to topics",
  incremental: true
})

/** @internal */
export const deliveries = Metric.counter("sluice_gateway_topic_deliveries_total", {
  description: "Topic events handed to subscribers' mailboxes",
  incremental: true
})

/** @internal */
export const subscribers = Metric.gauge("sluice_gateway_topic_subscribers", {
  description: "Topic subscriptions open"
})

/** @internal */
export const slowConsumers = Metric.counter("sluice_gateway_slow_consumers_total", {
  description: "Topic subscribers disconnected because their mailbox was full",
  incremental: true
})

/** @internal */
export const replays = Metric.counter("sluice_gateway_replays_total", {
  description: "Subscriptions that sent a Last-Event-ID, by result (resumed, expired, restarted, unknown)",
  incremental: true
})
