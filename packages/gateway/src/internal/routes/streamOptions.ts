/**
 * The SSE options every gateway stream shares: mailbox, heartbeats, write
 * timeout, correlation ids and the lifecycle events of the Flask gateway's
 * contract (`connection_open` `{ status, correlation_id }`,
 * `connection_close` `{ reason, correlation_id }`).
 *
 * @internal
 */
import type { SseResponse } from "@sluice/http"
import type { Config } from "../../Config.ts"

/** @internal */
export const streamOptions = <P = undefined, RA = never>(
  config: Config,
  extra: SseResponse.Options<P, RA> = {}
): SseResponse.Options<P, RA> => ({
  capacity: config.capacity,
  heartbeat: config.heartbeatMs,
  heartbeatEvent: config.heartbeatEvents,
  writeTimeout: config.writeTimeoutMs,
  correlationId: true,
  lifecycle: {
    open: config.openEvent === false
      ? false
      : {
        event: config.openEvent,
        data: ({ correlationId }) => ({ status: "connected", correlation_id: correlationId })
      },
    close: config.closeEvent === false
      ? false
      : { event: config.closeEvent, data: ({ correlationId, reason }) => ({ reason, correlation_id: correlationId }) }
  },
  ...extra
})
