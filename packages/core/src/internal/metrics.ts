/**
 * Every metric of `@sluice/core`, in one place (CONVENTIONS.md): names
 * `sluice_<area>_<what>[_total]`, attributes for reasons and strategies.
 * Connections, hubs and topics, keyed registries, resumable streams.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"

/** @internal */
export const connectionsOpen = Metric.gauge("sluice_connections_open", {
  description: "SSE connections currently open"
})

/** @internal */
export const connectionsTotal = Metric.counter("sluice_connections_total", {
  description: "SSE connections opened since start",
  incremental: true
})

/** @internal */
export const eventsDelivered = Metric.counter("sluice_events_delivered_total", {
  description: "Events written to clients (heartbeats excluded)",
  incremental: true
})

/** @internal */
export const eventsDiscarded = Metric.counter("sluice_events_discarded_total", {
  description: "Events accepted into a mailbox but never written, because the connection ended first",
  incremental: true
})

/** @internal */
export const heartbeatsSent = Metric.counter("sluice_heartbeats_total", {
  description: "Heartbeat comments queued for idle connections",
  incremental: true
})

/** @internal */
export const writeTimeouts = Metric.counter("sluice_write_timeouts_total", {
  description: "Connections ended because a write did not finish within the write timeout",
  incremental: true
})

/** @internal */
export const connectionOutcomes = Metric.counter("sluice_connection_outcomes_total", {
  description: "Ended connections by reason",
  incremental: true
})

/** @internal */
export const eventsDropped = Metric.counter("sluice_events_dropped_total", {
  description: "Events dropped by a full connection mailbox (reason: the strategy, sliding or dropping)",
  incremental: true
})

/** @internal */
export const hubEventsPublished = Metric.counter("sluice_hub_events_published_total", {
  description: "Events published to hubs (accepted, recorded and fanned out)",
  incremental: true
})

/** @internal */
export const hubPublishRejected = Metric.counter("sluice_hub_publish_rejected_total", {
  description:
    "Publishes rejected before touching any subscriber (reason: too-large, not-allowed, invalid, unserializable)",
  incremental: true
})

/** @internal */
export const hubDeliveries = Metric.counter("sluice_hub_deliveries_total", {
  description: "Events accepted into subscriber mailboxes (one per subscriber per event)",
  incremental: true
})

/** @internal */
export const hubSlowConsumers = Metric.counter("sluice_hub_slow_consumers_total", {
  description: "Subscribers disconnected because they could not keep up (strategy: disconnect, suspend)",
  incremental: true
})

/** @internal */
export const hubSubscribers = Metric.gauge("sluice_hub_subscribers", {
  description: "Hub subscribers currently registered"
})

/** @internal */
export const hubReplays = Metric.counter("sluice_hub_replays_total", {
  description: "Subscriptions with a Last-Event-ID (result: resumed, expired, restarted, unknown, budget)",
  incremental: true
})

/** @internal */
export const hubEventsReplayed = Metric.counter("sluice_hub_events_replayed_total", {
  description: "Retained events written to resubscribing clients",
  incremental: true
})

/** @internal */
export const topicsActive = Metric.gauge("sluice_topics", {
  description: "Topics (keyed hubs) currently alive"
})

/** @internal */
export const registryReplaced = Metric.counter("sluice_registry_replaced_total", {
  description: "Keyed connections replaced by a newer connection for the same key",
  incremental: true
})

/** @internal */
export const registryPendingDropped = Metric.counter("sluice_registry_pending_dropped_total", {
  description: "Waiting keyed events dropped, by reason (overflow, expired, budget)",
  incremental: true
})

/** @internal */
export const registryBudgetRefusals = Metric.counter("sluice_registry_budget_refusals_total", {
  description: "Keyed sends refused because the registry's budget for waiting events was spent",
  incremental: true
})

/** @internal */
export const resumableStarted = Metric.counter("sluice_resumable_started_total", {
  description: "Resumable streams started on this node (a repeated start of a known id is not counted here)",
  incremental: true
})

/** @internal */
export const resumableStartsExisting = Metric.counter("sluice_resumable_starts_existing_total", {
  description: "Starts of an id that already existed (a retried request): no second producer was started",
  incremental: true
})

/** @internal */
export const resumableStartsRefused = Metric.counter("sluice_resumable_starts_refused_total", {
  description: "Starts refused (reason: limit, invalid, unavailable)",
  incremental: true
})

/** @internal */
export const resumableActive = Metric.gauge("sluice_resumable_active", {
  description: "Resumable streams whose producer runs on this node"
})

/** @internal */
export const resumableAttached = Metric.gauge("sluice_resumable_attached", {
  description: "Clients attached to resumable streams through this node"
})

/** @internal */
export const resumableEnded = Metric.counter("sluice_resumable_ended_total", {
  description: "Resumable streams ended by this node (reason: completed, failed, stopped, expired, producer_lost)",
  incremental: true
})

/** `sluice_resumable_ended_total` for one kind of end. @internal */
export const resumableEndedBy = (kind: string) => Metric.withAttributes(resumableEnded, { reason: kind })

/** `sluice_resumable_starts_refused_total` for one reason. @internal */
export const resumableRefusedBy = (reason: "limit" | "invalid" | "unavailable") =>
  Metric.withAttributes(resumableStartsRefused, { reason })

/**
 * A counter for the hot path: a plain number in memory, read by the metric
 * registry only when metrics are snapshotted (scraped), so an update is one
 * addition instead of a registry lookup. One cell per registry, found once per
 * connection.
 *
 * @internal
 */
export const pullCounter = (metric: Metric.Metric<number, Metric.CounterState<number>>) => {
  const cells = new WeakMap<Metric.MetricRegistry, { count: number }>()
  return (context: Context.Context<never>): { count: number } => {
    const registry = Context.get(context, Metric.MetricRegistry)
    let cell = cells.get(registry)
    if (cell === undefined) {
      const c = { count: 0 }
      cell = c
      cells.set(registry, c)
      Metric.registerUnsafe(metric, context, {
        get: () => ({ count: c.count, incremental: true }),
        update: (n) => {
          c.count += n
        },
        modify: (n) => {
          c.count += n
        }
      })
    }
    return cell
  }
}

/** @internal */
export const deliveredCell = pullCounter(eventsDelivered)

/** @internal */
export const hubDeliveriesCell = pullCounter(hubDeliveries)

/** @internal */
export const hubPublishedCell = pullCounter(hubEventsPublished)
