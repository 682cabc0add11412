/**
 * Bursts: encoded frames a feeder hands to many connections as one array,
 * and the only place where that sharing is allowed.
 *
 * The promise: once {@link seal}ed, neither a burst's array nor its bytes
 * ever change. A log hands its tail's frames over this way (`Log.Change`),
 * the hub seals them and offers the very same array to every subscriber's
 * mailbox. Everything that could break the promise lives here:
 *
 * - {@link Frames}, a mailbox's waiting frames: its own array, or a burst it
 *   shares while nothing else is waiting. It copies the burst before any
 *   change (an append, a drop), and never reuses a burst's array as its own;
 * - {@link chunkOf}, one write's bytes: the concatenation of the frames a
 *   writer took. The subscribers of a broadcast take the same frames, so the
 *   last concatenation is kept and served again: found by identity for a
 *   burst (it cannot have changed), by comparing elements for any other
 *   array (which its mailbox reuses).
 *
 * @internal
 */
import type * as Connection from "../Connection.ts"
import { join } from "./bytes.ts"

/** Frames that never change again, shared by the mailboxes they were offered to (public: `Connection.Burst`). @internal */
export type Burst = Connection.Burst

/**
 * Declares that `frames` will never change again: the caller gives the array
 * up (a log's tail change, a freshly built array).
 *
 * @internal
 */
export const seal = (frames: ReadonlyArray<Uint8Array>): Burst => frames as Burst

/** Frames a writer took: the array, whether it is a burst, and the events among them. @internal */
export interface Taken {
  readonly _tag: "Frames"
  readonly frames: ReadonlyArray<Uint8Array>
  readonly burst: boolean
  readonly events: number
}

/**
 * A mailbox's waiting frames. Appends go to its own array unless it holds a
 * burst (then the burst is copied first); a take hands the current array out
 * whole and starts on the spare one (handed back with {@link recycle}): a
 * broadcast fills the same two arrays over and over.
 *
 * @internal
 */
export class Frames {
  private items: Array<Uint8Array> = []
  // The burst `items` is (when it is one): never written to, never recycled.
  private shared: Burst | undefined = undefined
  private spare: Array<Uint8Array> | undefined = undefined

  get length(): number {
    return this.items.length
  }

  at(i: number): Uint8Array {
    return this.items[i]!
  }

  /** Appends `frames[from..]`. */
  push(frames: ReadonlyArray<Uint8Array>, from: number): void {
    const out = this.writable()
    for (let i = from; i < frames.length; i++) out.push(frames[i]!)
  }

  pushOne(frame: Uint8Array): void {
    this.writable().push(frame)
  }

  /** Shares `burst` as the waiting frames (only when none are waiting). */
  share(burst: Burst): void {
    if (this.items.length > 0) return this.push(burst, 0)
    if (this.shared === undefined) this.spare ??= this.items
    // Typed as our own array, but never written while `shared` says it is a burst.
    this.items = burst as unknown as Array<Uint8Array>
    this.shared = burst
  }

  /** Removes the first `n` frames. */
  dropFirst(n: number): void {
    this.writable().splice(0, n)
  }

  /** Hands every waiting frame out and starts empty. */
  takeAll(events: number): Taken {
    const frames = this.items
    const burst = this.shared !== undefined
    this.shared = undefined
    this.items = this.spare ?? []
    this.spare = undefined
    return { _tag: "Frames", frames, burst, events }
  }

  /** Forgets every waiting frame. */
  clear(): void {
    this.shared = undefined
    this.items = []
  }

  /** The writer is done with what it took: an array of its own may be reused. */
  recycle(taken: Taken): void {
    if (taken.burst) return
    const frames = taken.frames as Array<Uint8Array>
    frames.length = 0
    this.spare = frames
  }

  private writable(): Array<Uint8Array> {
    if (this.shared !== undefined) {
      this.items = this.items.slice()
      this.shared = undefined
    }
    return this.items
  }
}

// The last concatenation, shared by the writers of a broadcast.
let lastParts: ReadonlyArray<Uint8Array> = []
let lastBurst: ReadonlyArray<Uint8Array> | undefined
let lastChunk: Uint8Array | undefined

/** One chunk for a write: the frames' bytes, concatenated once per broadcast. @internal */
export const chunkOf = (frames: ReadonlyArray<Uint8Array>, burst: boolean): Uint8Array => {
  if (frames.length === 1) return frames[0]!
  if (lastChunk !== undefined) {
    if (burst && frames === lastBurst) return lastChunk
    if (lastParts.length === frames.length) {
      let same = true
      for (let i = 0; i < frames.length; i++) {
        if (lastParts[i] !== frames[i]) {
          same = false
          break
        }
      }
      if (same) return lastChunk
    }
  }
  let size = 0
  for (let i = 0; i < frames.length; i++) size += frames[i]!.byteLength
  const out = join(frames, size)
  // An array of a mailbox's own is reused once written: keep a copy of it.
  lastParts = burst ? frames : frames.slice()
  lastBurst = burst ? frames : undefined
  lastChunk = out
  return out
}
