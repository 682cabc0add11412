import { Effect, Layer, type Scope } from "effect"
import { Log, Resumable, ResumableCoordinator, SseEvent } from "../../src/index.ts"
import { type Frame, type FrameSink, frameSink } from "./frames.ts"

/** `token` events numbered from 1. */
export const token = (n: number): SseEvent.Event => SseEvent.make({ event: "token", data: `t${n}` })

/** What a client attached with {@link client} saw. */
export interface Client extends FrameSink {
  readonly attachment: Resumable.Attachment
  /** Data of the `token` events, in order. */
  readonly tokens: () => ReadonlyArray<string>
  /** The reason of the close event, once written. */
  readonly closeReason: () => string | undefined
  /** Ids of the token events. */
  readonly tokenIds: () => ReadonlyArray<string>
}

const closeFrames = (reason: string) => [SseEvent.make({ event: "connection_close", data: reason })]

/** Attaches a recording client in the current scope. */
export const client = (
  rs: Resumable.Resumable,
  id: string,
  options: Omit<Partial<Resumable.AttachOptions>, "sink"> & { readonly recorder?: FrameSink | undefined } = {}
): Effect.Effect<Client, Resumable.AttachError, Scope.Scope> =>
  Effect.gen(function*() {
    const { recorder, ...rest } = options
    const sink = recorder ?? frameSink()
    const attachment = yield* Resumable.attach(rs, id, { heartbeat: false, closeFrames, ...rest, sink: sink.sink })
    const events = () => sink.events()
    const byType = (type: string) => events().filter((f: Frame) => f.event === type)
    return {
      ...sink,
      attachment,
      tokens: () => byType("token").map((f) => f.data ?? ""),
      tokenIds: () => byType("token").map((f) => f.id ?? ""),
      closeReason: () => byType("connection_close")[0]?.data
    }
  })

/** Runs a client to its end and returns what it saw. */
export const read = (
  rs: Resumable.Resumable,
  id: string,
  options: Omit<Partial<Resumable.AttachOptions>, "sink"> = {}
): Effect.Effect<Client, Resumable.AttachError> =>
  Effect.scoped(Effect.gen(function*() {
    const c = yield* client(rs, id, options)
    yield* c.attachment.outcome
    return c
  }))

/**
 * A `Log.Store` whose logs are shared by name, in memory: several
 * collections given it (and one coordinator) act as nodes of one cluster.
 */
export const sharedStore = (): Log.Store["Service"] => {
  const logs = new Map<string, Log.Log>()
  return Log.Store.of({
    open: (name, options) =>
      Effect.suspend(() => {
        const existing = logs.get(name)
        if (existing !== undefined) return Effect.succeed(existing)
        return Effect.tap(Log.makeMemory({ ...options, name }), (log) => Effect.sync(() => logs.set(name, log)))
      })
  })
}

export interface Partitionable {
  readonly coordinator: ResumableCoordinator.Coordinator["Service"]
  /** From now on, calls never answer and notifications are not passed on. */
  readonly cut: () => void
}

/** A coordinator in front of another that a test can cut off (a node frozen or partitioned). */
export const partitionable = (inner: ResumableCoordinator.Coordinator["Service"]): Partitionable => {
  let cut = false
  const gate = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => cut ? Effect.never : effect)
  const coordinator: ResumableCoordinator.Coordinator["Service"] = {
    [ResumableCoordinator.TypeId]: ResumableCoordinator.TypeId,
    claim: (id, request) => gate(inner.claim(id, request)),
    renew: (id, owner, ms) => gate(inner.renew(id, owner, ms)),
    touch: (id) => gate(inner.touch(id)),
    requestStop: (id, reason) => gate(inner.requestStop(id, reason)),
    finish: (id, request) => gate(inner.finish(id, request)),
    get: (id) => gate(inner.get(id)),
    remove: (id, record) => gate(inner.remove(id, record)),
    watch: (id, listener) =>
      inner.watch(id, (state) => {
        if (!cut) listener(state)
      })
  }
  return {
    coordinator,
    cut: () => {
      cut = true
    }
  }
}

/** The services of one node of a cluster sharing `coordinator` and `store`. */
export const nodeLayer = (
  coordinator: ResumableCoordinator.Coordinator["Service"],
  store: Log.Store["Service"]
): Layer.Layer<ResumableCoordinator.Coordinator | Log.Store> =>
  Layer.merge(
    Layer.succeed(ResumableCoordinator.Coordinator, coordinator),
    Layer.succeed(Log.Store, store)
  )
