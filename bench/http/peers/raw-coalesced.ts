/**
 * `raw-coalesced`: `raw` with the write coalescing of a sluice hub: a burst that comes within
 * 2 ms of the end of the last write to the clients waits for the end of those 2 ms, and goes out with
 * every event published meanwhile, in one write per client; one that comes later is written
 * at the end of its turn, as `raw` does. Run in the trickle scenario only.
 */
import type { Peer } from "../Peer.ts"
import { rawPeer } from "./raw.ts"

// sluice's default window (`Hub.Options.coalesce`).
const windowMs = 2

let lastFlushMs = Number.NEGATIVE_INFINITY
// A burst that came while the last one was written: its timer starts after.
let waiting: (() => void) | undefined
const coalesce = (flush: () => void) => {
  const run = () => {
    flush()
    // Node writes on the next tick (it uncorks the sockets then): the window starts after.
    lastFlushMs = Number.POSITIVE_INFINITY
    process.nextTick(() => {
      lastFlushMs = performance.now()
      if (waiting !== undefined) {
        const next = waiting
        waiting = undefined
        setTimeout(next, windowMs)
      }
    })
  }
  if (lastFlushMs === Number.POSITIVE_INFINITY) {
    waiting = run
    return
  }
  const wait = lastFlushMs + windowMs - performance.now()
  if (wait <= 0) queueMicrotask(run)
  else setTimeout(run, wait)
}

export const peer: Peer = {
  description: "node:http like raw, bursts within 2 ms of the last write coalesced into one write per client",
  start: rawPeer(coalesce)
}
