/**
 * Messages between the runner and its child processes (server hosts and load clients), over
 * Node's IPC channel. A command with an `id` gets exactly one `Reply` with the same `id`.
 */
import type { HistogramData } from "./Histogram.ts"

/** What a server host measures about its own process. */
export interface ServerStats {
  readonly rssBytes: number
  readonly heapUsedBytes: number
  readonly externalBytes: number
  /** Peak RSS of the process so far. */
  readonly maxRssBytes: number
  /** `process.getActiveResourcesInfo().length`: sockets, servers, timers, the IPC pipe. */
  readonly handles: number
  readonly subscribers: number
  readonly cpuUserUs: number
  readonly cpuSystemUs: number
}

/** The result of a publishing run in the server host. */
export interface Published {
  readonly published: number
  /** Monotonic µs of the first and last publish. */
  readonly startUs: number
  readonly endUs: number
}

export type ServerCommand =
  | { readonly type: "stats"; readonly id: number; readonly gc: boolean }
  | {
    readonly type: "burst"
    readonly id: number
    readonly events: number
    readonly burst: number
    /** The publisher stays about this much delivery time ahead of the slowest client... */
    readonly aheadMs: number
    /** ...but never fewer nor more events ahead than these. */
    readonly minWindow: number
    readonly maxWindow: number
    readonly timeCapMs: number
    readonly payloadBytes: number
  }
  | { readonly type: "ack"; readonly seq: number }
  | {
    readonly type: "paced"
    readonly id: number
    readonly events: number
    readonly perSecond: number
    readonly payloadBytes: number
  }
  /** One event per event-loop turn, `perSecond` at most, until `events` or `timeCapMs`. */
  | {
    readonly type: "trickle"
    readonly id: number
    readonly events: number
    readonly perSecond: number
    readonly timeCapMs: number
    readonly payloadBytes: number
  }
  /** Starts (intervalMs > 0) or stops (intervalMs = 0) publishing one event every intervalMs. */
  | { readonly type: "ticker"; readonly id: number; readonly intervalMs: number; readonly payloadBytes: number }
  | {
    readonly type: "waitSubscribers"
    readonly id: number
    readonly atLeast: number
    readonly atMost: number
    readonly timeoutMs: number
  }
  /** Collects garbage, then writes a V8 heap snapshot to `path` (the memory tools of bench/memory). */
  | { readonly type: "heapSnapshot"; readonly id: number; readonly path: string }

/** The result each server command replies with. */
export interface ServerResults {
  readonly stats: ServerStats
  readonly burst: Published
  readonly paced: Published
  readonly trickle: Published
  /** Published so far when the ticker was stopped (0 when started). */
  readonly ticker: Published
  readonly waitSubscribers: { readonly ok: boolean; readonly subscribers: number; readonly ms: number }
  readonly heapSnapshot: { readonly path: string; readonly heapUsedBytes: number }
  readonly ack: never
}

export type ServerMessage =
  | { readonly type: "ready"; readonly port: number; readonly description: string }
  | Reply

/** What a load client reports when the events it waited for have arrived (or time ran out). */
export interface Received {
  readonly connections: number
  /** Events from `fromSeq` on received by all connections together. */
  readonly events: number
  /** Events received while tracking, warm-up included. */
  readonly allEvents: number
  /** Publish time (monotonic µs) of the earliest measured event received. */
  readonly firstUs: number
  readonly bytes: number
  /** Events whose sequence number was not the next expected one (gap, repeat or reorder). */
  readonly seqErrors: number
  /** Connections that had not received the last event when time ran out. */
  readonly incomplete: number
  /** Connections closed by the server or failed while tracked. */
  readonly lost: number
  readonly latency: HistogramData
  /** Monotonic µs of the last event received. */
  readonly lastUs: number
  readonly cpuUs: number
}

export interface Churned {
  readonly completed: number
  readonly failed: number
  readonly events: number
  readonly elapsedUs: number
  readonly cpuUs: number
}

export type ClientCommand =
  | {
    readonly type: "open"
    readonly id: number
    readonly port: number
    readonly count: number
    readonly concurrency: number
    readonly timeoutMs: number
    /** Source addresses (127.0.0.x), taken in turn: past one address's ephemeral ports. */
    readonly localAddresses?: ReadonlyArray<string> | undefined
  }
  /** Opens connections that come back when cut, resuming with Last-Event-ID (see client.ts). */
  | {
    readonly type: "resilient"
    readonly id: number
    readonly port: number
    readonly count: number
    readonly concurrency: number
    readonly timeoutMs: number
    readonly localAddresses?: ReadonlyArray<string> | undefined
  }
  /** Waits until every resilient connection is back after `afterUs` (monotonic µs) and got a later event. */
  | { readonly type: "storm"; readonly id: number; readonly afterUs: number; readonly timeoutMs: number }
  | { readonly type: "stopResilient"; readonly id: number }
  /**
   * Starts measuring events numbered `fromSeq` or later, or published at `fromUs` (monotonic
   * µs) or later, whichever comes first; the earlier ones are a warm-up (null: no time bound).
   */
  | {
    readonly type: "track"
    readonly id: number
    readonly progressEveryMs: number
    readonly fromSeq: number
    readonly fromUs: number | null
  }
  | { readonly type: "finish"; readonly id: number; readonly lastSeq: number; readonly timeoutMs: number }
  | { readonly type: "closeAll"; readonly id: number }
  | {
    readonly type: "churn"
    readonly id: number
    readonly port: number
    readonly cycles: number
    readonly concurrency: number
    /** No new cycle starts after this. */
    readonly timeCapMs: number
    /** Cycles still running then are abandoned. */
    readonly timeoutMs: number
  }

/** The result each client command replies with. */
export interface ClientResults {
  readonly open: { readonly opened: number; readonly failed: number }
  readonly track: null
  readonly finish: Received
  readonly closeAll: null
  readonly churn: Churned
  readonly resilient: { readonly opened: number; readonly failed: number }
  readonly storm: {
    readonly connections: number
    /** Connections back (a 200 after the restart), and those that got an event published after it. */
    readonly back: number
    readonly live: number
    readonly lastBackUs: number
    readonly lastEventUs: number
    /** Reconnections that sent a Last-Event-ID, and those that had none to send. */
    readonly withId: number
    readonly withoutId: number
  }
  readonly stopResilient: null
}

export type ClientMessage =
  | { readonly type: "ready" }
  /** While tracking: the lowest sequence number every connection of this client has reached. */
  | { readonly type: "progress"; readonly minSeq: number }
  | Reply

/** The answer to a command: its result, or why it failed. */
export type Reply =
  | { readonly type: "reply"; readonly id: number; readonly result: unknown }
  | { readonly type: "error"; readonly id: number; readonly message: string }
