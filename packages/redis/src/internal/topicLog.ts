/**
 * One topic's `Log` on this node: appends through the node's appender,
 * reads from the stream, the live tail from the node's subscription.
 *
 * Reads answer as `Log` says: `Found` with entries after the starting point
 * (bounded by the request's budget, at least one entry), or `NotFound`
 * (`restarted` for an id of another epoch, `expired` for one older than the
 * stream retains, `unknown` for anything else). A publisher's own id is found
 * by a scan of the retained history, newest first.
 *
 * @internal
 */
import { Log } from "@sluice/core"
import * as Effect from "effect/Effect"
import type { Appender } from "./appender.ts"
import type * as scripts from "./logScripts.ts"
import { decodeCallerId } from "./logScripts.ts"
import type { Range, Tail } from "./tail.ts"
import type { TopicClient } from "./topicClient.ts"

// Most entries one read asks Redis for.
const maxRead = 10_000

const encoder = new TextEncoder()

const toEntries = (range: Range): Array<Log.Entry> =>
  range.entries.map((e) => {
    const id = decodeCallerId(e.callerId) ?? Log.formatId(range.epoch, e.seq)
    return { seq: e.seq, id, frame: encoder.encode(Log.frameText(id, e.fields)) }
  })

// At least one entry (progress), then as many as fit the budget's bytes.
const cut = (entries: Array<Log.Entry>, budget: Log.Budget, fromNewest: boolean): Array<Log.Entry> => {
  let bytes = 0
  let n = 0
  const at = (i: number) => entries[fromNewest ? entries.length - 1 - i : i]!
  while (n < entries.length && n < budget.maxEvents) {
    const size = at(n).frame.byteLength
    if (n > 0 && bytes + size > budget.maxBytes) break
    bytes += size
    n++
  }
  return fromNewest ? entries.slice(entries.length - n) : entries.slice(0, n)
}

// The entries after `seq` of what was read, or why there are none.
const after = (r: Range, seq: number, budget: Log.Budget): Log.ReadResult => {
  if (seq > r.lastSeq) return Log.notFound(r.epoch, r.lastSeq, "unknown")
  if (seq < r.firstRetained - 1) return Log.notFound(r.epoch, r.lastSeq, "expired")
  const entries = cut(toEntries(r), budget, false)
  const last = entries.length === 0 ? seq : entries[entries.length - 1]!.seq
  return Log.found(r.epoch, r.lastSeq, entries, last >= r.lastSeq)
}

/** @internal */
export const make = (
  name: string,
  bounds: scripts.Bounds,
  tail: Tail,
  appender: Appender,
  client: TopicClient
): Log.Log => {
  const readAfter = (seq: number, count: number) =>
    Effect.tap(client.read(name, bounds, seq, count, "read"), (range) =>
      Effect.sync(() => {
        // A read that finds a new life of the record: the tail catches up now
        // rather than at its next position check.
        if (range.epoch !== tail.epoch) tail.checked(range, true)
      }))

  const read = (request: Log.ReadRequest): Effect.Effect<Log.ReadResult, Log.LogError> =>
    Effect.gen(function*() {
      const budget = request.budget
      const count = Math.max(0, Math.min(budget.maxEvents, maxRead))
      switch (request._tag) {
        case "Newest": {
          const r = yield* readAfter(-1, count)
          const entries = cut(toEntries(r), budget, true)
          // Complete: everything retained (the oldest retained entry is among them).
          return Log.found(r.epoch, r.lastSeq, entries, (entries[0]?.seq ?? r.firstRetained) <= r.firstRetained)
        }
        case "AfterSeq": {
          const r = yield* readAfter(Math.max(0, request.seq), count)
          return r.epoch === request.epoch
            ? after(r, request.seq, budget)
            : Log.notFound(r.epoch, r.lastSeq, "restarted")
        }
        case "AfterId": {
          const parsed = Log.parseId(request.id)
          let r: Range | undefined
          if (parsed !== undefined) {
            r = yield* readAfter(parsed.seq, count)
            if (r.epoch === parsed.epoch) return after(r, parsed.seq, budget)
          }
          const own = yield* client.findCallerId(name, request.id, Math.max(1, bounds.maxEvents))
          if (typeof own === "number") return after(yield* readAfter(own, count), own, budget)
          r ??= yield* readAfter(0, 0)
          return Log.notFound(r.epoch, r.lastSeq, parsed === undefined ? "unknown" : "restarted")
        }
      }
    })

  return {
    [Log.TypeId]: Log.TypeId,
    name,
    position: () => ({ epoch: tail.epoch, seq: tail.lastSeq }),
    append: (entries) => appender.append(entries),
    read,
    listen: (listener) => {
      tail.listeners.add(listener)
      return () => {
        tail.listeners.delete(listener)
      }
    },
    // Nothing is retained here: the record is in Redis.
    stats: () => ({ events: 0, bytes: 0, expiresAt: undefined }),
    synchronous: undefined
  }
}
