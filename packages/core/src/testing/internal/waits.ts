/**
 * What a suspended fiber waits on, read from the callback it suspended in.
 *
 * Every suspension in Effect 4 is an `Effect.callback`: `Deferred.await`,
 * `Queue.take`, `Latch.await`, … each pass their own `register` function. The
 * kit sees that function (through a tracer hook, see `registry.ts`) and names
 * the wait by the shape of its source. That reads effect's compiled code, so
 * it is pinned to the effect version the kit is tested with: a wait the table
 * does not know is reported as `Callback` with an excerpt of its source, which
 * is honest and still useful.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

/**
 * What a live fiber is doing, as far as the kit can tell.
 *
 * @internal
 */
export type Wait =
  | { readonly _tag: "Running" }
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Deferred" }
  | { readonly _tag: "QueueTake" }
  | { readonly _tag: "QueueOffer" }
  | { readonly _tag: "QueueAwait" }
  | { readonly _tag: "Latch" }
  | { readonly _tag: "Semaphore" }
  | { readonly _tag: "Join"; readonly how: JoinKind }
  | { readonly _tag: "PubSubTake" }
  | { readonly _tag: "PubSubPublish" }
  | { readonly _tag: "Pool" }
  | { readonly _tag: "Transaction" }
  | { readonly _tag: "Sleep"; readonly until: number }
  | { readonly _tag: "Never" }
  | { readonly _tag: "External"; readonly what: string }
  | { readonly _tag: "Callback"; readonly source: string }
  | { readonly _tag: "NotStarted" }
  | { readonly _tag: "BodyEnded" }
  | { readonly _tag: "Unknown" }

/** How a fiber waits for other fibers. @internal */
export type JoinKind = "join" | "await" | "joinAll" | "awaitAll" | "children" | "race"

const tag = <T extends Wait["_tag"]>(t: T) => ({ _tag: t }) as Extract<Wait, { _tag: T }>

/** @internal */
export const running: Wait = tag("Running")
/** @internal */
export const ready: Wait = tag("Ready")
/** @internal */
export const notStarted: Wait = tag("NotStarted")
/** @internal */
export const unknown: Wait = tag("Unknown")
/** @internal */
export const bodyEnded: Wait = tag("BodyEnded")
/** @internal */
export const never: Wait = tag("Never")
/** @internal */
export const sleep = (until: number): Wait => ({ _tag: "Sleep", until })
/** @internal */
export const external = (what: string): Wait => ({ _tag: "External", what })
/** @internal */
export const join = (how: JoinKind): Wait => ({ _tag: "Join", how })
/** @internal */
export const callback = (source: string): Wait => ({ _tag: "Callback", source })

/**
 * Whether something outside the fibers of a bubble is expected to end the
 * wait (a promise, a real timer, a wait marked with `Bubble.external`).
 *
 * @internal
 */
export const isExternal = (wait: Wait): boolean => wait._tag === "External"

/** A wait that only another fiber (or the clock) can end. @internal */
export const isBlocked = (wait: Wait): boolean =>
  wait._tag !== "Running" && wait._tag !== "Ready" && wait._tag !== "NotStarted" && wait._tag !== "External" &&
  wait._tag !== "BodyEnded"

/**
 * A short description: `Queue.offer`, `Deferred.await`, `sleep until 2000 ms`.
 *
 * @internal
 */
export const describe = (wait: Wait): string => {
  switch (wait._tag) {
    case "Running":
      return "running"
    case "Ready":
      return "ready to run"
    case "NotStarted":
      return "not started yet"
    case "Deferred":
      return "Deferred.await"
    case "QueueTake":
      return "Queue.take"
    case "QueueOffer":
      return "Queue.offer (queue full)"
    case "QueueAwait":
      return "Queue.await"
    case "Latch":
      return "Latch.await"
    case "Semaphore":
      return "Semaphore.take"
    case "Join":
      return wait.how === "children"
        ? "its concurrent children (Effect.all/forEach)"
        : wait.how === "race"
        ? "a race of fibers"
        : `Fiber.${wait.how}`
    case "PubSubTake":
      return "PubSub.take"
    case "PubSubPublish":
      return "PubSub.publish (PubSub full)"
    case "Pool":
      return "Pool.get"
    case "Transaction":
      return "a transaction (Tx*)"
    case "Sleep":
      return `sleep until ${wait.until} ms`
    case "Never":
      return "Effect.never"
    case "External":
      return `external: ${wait.what}`
    case "Callback":
      return `Effect.callback: ${wait.source}`
    case "BodyEnded":
      return "the end of the other fibers (its body has ended)"
    case "Unknown":
      return "unknown"
  }
}

/** A register function the kit made itself, tagged with its wait. @internal */
export const WaitTag = Symbol.for("@sluice/core/testing/Wait")

/** Tags `register` so {@link classify} reports `wait` for it. @internal */
export const tagRegister = <F extends Function>(register: F, wait: Wait): F => {
  ;(register as unknown as Record<symbol, Wait>)[WaitTag] = wait
  return register
}

const neverRegister: unknown = (Effect.never as unknown as { readonly register?: unknown }).register

// Order matters: the first pattern that matches names the wait.
const table: ReadonlyArray<readonly [RegExp, Wait]> = [
  [/self\.resumes/, tag("Deferred")],
  [/state\.takers\.add/, tag("QueueTake")],
  [/waitToOffer\(/, tag("QueueOffer")],
  [/state\.awaiters\.add/, tag("QueueAwait")],
  [/firstAvailableWaiter/, tag("Semaphore")],
  [/_isOpen[\s\S]*waiters\.push/, tag("Latch")],
  [/addObserver\(resume\)/, join("join")],
  [/addObserver\(\s*\(?exit\)?\s*=>\s*resume/, join("await")],
  [/removeObservers/, join("joinAll")],
  [/exits\.push/, join("awaitAll")],
  [/parentFiber\s*=\s*getCurrentFiber/, join("children")],
  [/doneCount|forkUnsafe\(parent/, join("race")],
  [/shutdownFlag[\s\S]*pollers|pollers[\s\S]*shutdownFlag/, tag("PubSubTake")],
  [/offerUnsafe\(elements,\s*deferred\)/, tag("PubSubPublish")],
  [/firstHealthyAvailable/, tag("Pool")],
  [/isTransactionConsistent/, tag("Transaction")],
  [/\.then\(/, external("a promise")],
  [/setTimeout\(/, external("a real timer (live clock)")],
  [/fn\(\.\.\.args/, external("a Node-style callback API")]
]

const cache = new WeakMap<Function, Wait>()

const excerpt = (source: string): string => {
  const flat = source.replace(/\s+/g, " ").trim()
  return flat.length > 72 ? `${flat.slice(0, 72)}…` : flat
}

/**
 * Names the wait of a fiber suspended in a callback registered by `register`.
 *
 * @internal
 */
export const classify = (register: Function): Wait => {
  const tagged = (register as unknown as Record<symbol, Wait | undefined>)[WaitTag]
  if (tagged !== undefined) return tagged
  if (register === neverRegister) return never
  const known = cache.get(register)
  if (known !== undefined) return known
  const source = Function.prototype.toString.call(register)
  let wait: Wait = callback(excerpt(source))
  for (const [pattern, w] of table) {
    if (pattern.test(source)) {
      wait = w
      break
    }
  }
  cache.set(register, wait)
  return wait
}
