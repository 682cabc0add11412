/**
 * The metrics of resumable streams (kept apart from `internal/metrics.ts`
 * while that file is being reworked on another branch; they belong there).
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import type { EndKind } from "./model.ts"

/** @internal */
export const started = Metric.counter("sluice_resumable_started_total", {
  description: "Resumable streams started on this node (a repeated start of a known id is not counted here)",
  incremental: true
})

/** @internal */
export const startsExisting = Metric.counter("sluice_resumable_starts_existing_total", {
  description: "Starts of an id that already existed (a retried request): no second producer was started",
  incremental: true
})

/** @internal */
export const startsRefused = Metric.counter("sluice_resumable_starts_refused_total", {
  description: "Starts refused (reason: limit, invalid, unavailable)",
  incremental: true
})

/** @internal */
export const active = Metric.gauge("sluice_resumable_active", {
  description: "Resumable streams whose producer runs on this node"
})

/** @internal */
export const attached = Metric.gauge("sluice_resumable_attached", {
  description: "Clients attached to resumable streams through this node"
})

/** @internal */
export const ended = Metric.counter("sluice_resumable_ended_total", {
  description: "Resumable streams ended by this node (reason: completed, failed, stopped, expired, producer_lost)",
  incremental: true
})

/** @internal */
export const endedBy = (kind: EndKind) => Metric.withAttributes(ended, { reason: kind })

/** @internal */
export const refusedBy = (reason: "limit" | "invalid" | "unavailable") =>
  Metric.withAttributes(startsRefused, { reason })
