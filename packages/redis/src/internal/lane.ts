/**
 * One keyed connection on this node, fed from Redis: events in key order,
 * each taken once, the outbox acknowledged as the connection takes it.
 *
 * ```text
 * node channel ─▶ receive(seq) ─┬─ next ─▶ offer ─▶ mailbox ──▶ ack (batched: the outbox drops what was taken)
 *                               ├─ seen ─▶ dropped         └─ full: waiting (bounded) ─▶ feeder
 *                               └─ jump ─▶ pull the outbox (ZRANGEBYSCORE) first
 * ```
 *
 * Guarantees:
 * - **Key order, once**: events are taken in sequence order; a jump (a
 *   message lost in transit, a subscription that came back) pulls the
 *   outbox before anything newer; duplicates are dropped.
 * - **Taken means acknowledged, and only that**: an event leaves Redis when
 *   this connection took it into its mailbox (or wrote it as preamble).
 *   Anything this node holds but the connection did not take stays in Redis
 *   for the next connection, on any node.
 * - **Bounded**: at most `capacity` events wait here for a slow client; more
 *   stay in Redis and are pulled when there is room.
 *
 * @internal
 */
import type { Connection } from "@sluice/core"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import { utf8 } from "./frames.ts"
import type { Waiting } from "./registryScripts.ts"

/** @internal */
export interface Deps {
  /** The outbox after `after`, or `stale` when another generation owns the key. */
  readonly pull: (
    after: number
  ) => Effect.Effect<{ readonly stale: boolean; readonly entries: ReadonlyArray<Waiting> }, unknown>
  /** Acknowledges everything up to `seq`. */
  readonly ack: (seq: number) => Effect.Effect<void, unknown>
  readonly run: (effect: Effect.Effect<void>) => void
  readonly retry: Schedule.Schedule<unknown>
  readonly capacity: number
  /** The key's connection was replaced (seen by a pull or a renewal). */
  readonly onStale: () => void
}

interface Held {
  readonly seq: number
  readonly bytes: Uint8Array
  readonly terminal: string | undefined
}

/** @internal */
export class Lane {
  readonly key: string
  readonly generation: number
  /** The token the connection carries, if any (renewed with its registration). */
  token: string | undefined = undefined
  connection: Connection.Connection | undefined
  closeFrames: (reason: string) => ReadonlyArray<Uint8Array> = () => []
  /** Highest sequence number taken from Redis into this lane. */
  lastSeq: number
  /** Highest sequence number the connection took (preamble, mailbox). */
  taken: number
  ended = false
  /** Set when this lane ended because another connection replaced it. */
  replaced = false
  private acked: number
  private acking = false
  private readonly held: Array<Held> = []
  private feeding = false
  private pulling = false
  private pullAgain = false
  private buffered: Array<Waiting> = []
  /** Last sequence number a renewal saw in Redis (a lag that outlives one round pulls). */
  suspect = 0
  private readonly deps: Deps

  constructor(key: string, generation: number, taken: number, deps: Deps) {
    this.key = key
    this.generation = generation
    this.lastSeq = taken
    this.taken = taken
    this.acked = taken
    this.deps = deps
  }

  /** Events waiting here for room in the mailbox. */
  get waiting(): number {
    return this.held.length
  }

  /** Their bytes. */
  get waitingBytes(): number {
    let n = 0
    for (const h of this.held) n += h.bytes.byteLength
    return n
  }

  receive(event: Waiting): void {
    if (this.ended) return
    if (this.pulling) {
      if (this.buffered.length < this.deps.capacity) this.buffered.push(event)
      else this.pullAgain = true
      return
    }
    if (event.seq <= this.lastSeq) return
    if (this.held.length >= this.deps.capacity) {
      // A slow client: the event stays in Redis; the feeder pulls once there is room.
      this.pullAgain = true
      return
    }
    if (event.seq > this.lastSeq + 1) {
      this.buffered.push(event)
      this.pull()
      return
    }
    this.take(event)
  }

  /** Takes an event in order: into the mailbox, or held while the mailbox is full. */
  private take(event: Waiting): void {
    const connection = this.connection
    if (connection === undefined || !connection.accepting()) return
    if (this.held.length >= this.deps.capacity) {
      // Stays in Redis; pulled once the client made room.
      this.pullAgain = true
      return
    }
    this.lastSeq = event.seq
    const item = { seq: event.seq, bytes: utf8(event.frame), terminal: event.terminal }
    if (this.held.length === 0 && connection.offerUnsafe(item.bytes)) {
      this.accepted(item)
      return
    }
    this.held.push(item)
    this.feed()
  }

  private accepted(item: Held): void {
    this.taken = item.seq
    this.scheduleAck()
    if (item.terminal !== undefined) this.close(item.terminal)
  }

  /** Ends the connection with the close frames for `reason`; what it took is written first. */
  close(reason: string): boolean {
    const connection = this.connection
    if (connection === undefined) return false
    return connection.closeUnsafe(reason, this.closeFrames(reason))
  }

  // Moves held events into the mailbox as room appears.
  private feed(): void {
    if (this.feeding) return
    this.feeding = true
    const connection = this.connection!
    const loop: Effect.Effect<void> = Effect.flatMap(connection.awaitRoom, (room) => {
      if (!room || this.ended) return Effect.void
      while (this.held.length > 0 && connection.offerUnsafe(this.held[0]!.bytes)) {
        this.accepted(this.held.shift()!)
      }
      if (this.held.length > 0) return loop
      if (this.pullAgain) this.pull()
      return Effect.void
    })
    this.deps.run(Effect.ensuring(
      loop,
      Effect.sync(() => {
        this.feeding = false
      })
    ))
  }

  private scheduleAck(): void {
    if (this.acking || this.taken <= this.acked) return
    this.acking = true
    const step: Effect.Effect<void> = Effect.suspend(() => {
      const upTo = this.taken
      return Effect.flatMap(Effect.ignore(this.deps.ack(upTo)), () => {
        this.acked = Math.max(this.acked, upTo)
        return this.taken > this.acked && !this.ended ? step : Effect.void
      })
    })
    this.deps.run(Effect.ensuring(
      step,
      Effect.sync(() => {
        this.acking = false
      })
    ))
  }

  /** Pulls what Redis holds after this lane's position, then what arrived meanwhile. */
  pull(): void {
    if (this.ended) return
    if (this.pulling) {
      this.pullAgain = true
      return
    }
    this.pulling = true
    this.pullAgain = false
    const step = Effect.suspend(() => this.deps.pull(this.lastSeq)).pipe(
      Effect.retry(this.deps.retry),
      Effect.matchEffect({
        onFailure: () => Effect.void,
        onSuccess: (reply) =>
          Effect.sync(() => {
            if (reply.stale) {
              this.deps.onStale()
              return
            }
            this.pulling = false
            for (const event of reply.entries) {
              if (event.seq <= this.lastSeq) continue
              // A hole in the outbox: dropped there (overflow, expiry), counted in Redis.
              this.lastSeq = event.seq - 1
              this.take(event)
            }
          })
      })
    )
    this.deps.run(Effect.ensuring(
      step,
      Effect.sync(() => {
        this.pulling = false
        const pending = this.buffered
        this.buffered = []
        for (const event of pending) this.receive(event)
        if (this.pullAgain && this.held.length === 0) this.pull()
      })
    ))
  }
}
