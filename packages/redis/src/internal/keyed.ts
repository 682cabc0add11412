/**
 * The keyed registry of one node over Redis: `Registry.Backend`'s send,
 * connect and disconnect, the node's channel, and the renewals that keep its
 * connections' registrations alive.
 *
 * ```text
 * connect(k) on B: claim (gen g, tells A "replaced") ─▶ A closes its connection, acks what it took, "handed over"
 *                  ─▶ B pulls the outbox ─▶ connection: preamble, outbox, then live events
 * send(k) anywhere: script: number, outbox, PUBLISH to the owner's node ─▶ lane ─▶ mailbox ─▶ ack
 * ```
 *
 * @internal
 */
import { Connection, Registry, SseEncoder } from "@sluice/core"
import type { SseEvent } from "@sluice/core"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Redis from "effect/persistence/Redis"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { RedisUnavailableError } from "../RedisConnection.ts"
import * as channel from "./channel.ts"
import { describeCause } from "./errors.ts"
import { utf8 } from "./frames.ts"
import * as keyedClient from "./keyedClient.ts"
import * as keys from "./keys.ts"
import { Lane } from "./lane.ts"
import * as metrics from "./metrics.ts"
import * as scripts from "./registryScripts.ts"

/** Validated settings. @internal */
export interface Config {
  /** Prefix of this registry's keys and channels (`<prefix>:<name>`). */
  readonly prefix: string
  readonly address: string
  readonly node: string
  readonly pingMillis: number
  /** Renewals (and position checks) of this node's connections; `0`: none. */
  readonly renewMillis: number
  readonly timeoutMillis: number
  /** The error for Redis unreachable at start (made by the public module). */
  readonly unavailable: (operation: string, detail: string) => RedisUnavailableError
  readonly handoverMillis: number
  readonly limits: scripts.Limits
  readonly maxKeys: number
  readonly exists: ((key: string) => Effect.Effect<boolean>) | undefined
}

interface Message {
  readonly x: "e" | "r" | "h" | "d"
  readonly k: string
  /** A generation, as digits. */
  readonly g: string
  readonly s?: number
  readonly f?: string
  readonly t?: string
  readonly r?: string
}

/** A connect waiting for its claim and the previous owner's handover. */
interface Claim {
  generation: number | undefined
  readonly handedOver: Set<number>
  /** Generations another connection replaced while this one was being set up. */
  readonly replaced: Set<number>
  readonly wake: Deferred.Deferred<void>
  /** Events that arrived before the connection was in place. */
  readonly events: Array<scripts.Waiting>
}

/**
 * A send or disconnect addressed to a token that names no live connection:
 * it ended, was replaced, was closed by a terminal event, its node died (its
 * registration's lease ran out), or it never existed.
 *
 * @internal
 */
export class UnknownTokenError extends Data.TaggedError("UnknownTokenError")<{ readonly token: string }> {
  override get message(): string {
    return `no live connection has the token ${JSON.stringify(this.token)} (it ended or was replaced)`
  }
}

/** What a node offers besides `Registry.Backend`: connections named by tokens. @internal */
export interface Tokens {
  /** `onReleased`: called once, after the connection ended, when Redis no longer holds its registration. */
  readonly connectWith: (
    key: string,
    token: string | undefined,
    options: Registry.ConnectOptions,
    onReleased?: ((outcome: Connection.Outcome) => void) | undefined
  ) => Effect.Effect<Connection.Connection, Registry.ConnectError, Scope.Scope>
  readonly sendToken: (
    token: string,
    event: SseEvent.Frame,
    options: Registry.SendOptions
  ) => Effect.Effect<Registry.SendResult, Registry.SendError | UnknownTokenError>
  readonly disconnectToken: (
    token: string,
    reason: string
  ) => Effect.Effect<boolean, Registry.RegistryUnavailableError | UnknownTokenError>
  /** The key a live token names on this node, if its connection is here. */
  readonly localKey: (token: string) => string | undefined
}

/** Counters of this node. @internal */
export interface Counters {
  replaced: number
  droppedOverflow: number
  droppedExpired: number
}

/** @internal */
export const make = (
  redis: Redis.Redis["Service"],
  config: Config
): Effect.Effect<Registry.Backend & Tokens & { readonly counters: Counters }, RedisUnavailableError, Scope.Scope> =>
  Effect.gen(function*() {
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const context = yield* Effect.context<never>()
    const fork = (effect: Effect.Effect<void>) => {
      run(effect)
    }
    const lanes = new Map<string, Lane>()
    // Live tokens of this node's connections.
    const tokens = new Map<string, Lane>()
    const claims = new Map<string, Set<Claim>>()
    const counters: Counters = { replaced: 0, droppedOverflow: 0, droppedExpired: 0 }
    const retry = Schedule.spaced(Math.max(50, Math.min(config.pingMillis, 500)))
    const limits = config.limits

    const client = keyedClient.make(redis, config)
    const ack = client.ack
    const pull = client.pull

    // A token whose connection ended or was replaced: its entry in Redis goes
    // (the key's state already refuses it; this keeps Redis tidy).
    const retire = (lane: Lane) => {
      const token = lane.token
      if (token === undefined || tokens.get(token) !== lane) return
      tokens.delete(token)
      fork(Effect.ignore(Effect.retry(client.forget(token), { schedule: retry, times: 5 })))
    }

    // A lane whose key another connection owns now: closed as replaced (it
    // writes what it took, then its close frames). What it took is final at
    // once, so it is acknowledged now and the new owner told to go on.
    const replace = (lane: Lane) => {
      if (lane.ended || lane.replaced) return
      lane.replaced = true
      retire(lane)
      counters.replaced++
      metrics.keyedReplaced.updateUnsafe(1, context)
      lane.close("replaced")
      fork(Effect.ignore(Effect.retry(ack(lane.key, lane.generation, lane.taken, "handover"), {
        schedule: retry,
        times: 20
      })))
    }

    // The connection ended: its registration goes, if it is still its own.
    // `released` is called once Redis no longer holds it (a replaced one's
    // was taken over already), or once the release has been given up.
    const end = (lane: Lane, released: () => void) => {
      lane.ended = true
      if (lanes.get(lane.key) === lane) lanes.delete(lane.key)
      retire(lane)
      if (lane.replaced) return released()
      fork(Effect.ensuring(
        Effect.ignore(Effect.retry(ack(lane.key, lane.generation, lane.taken, "release"), {
          schedule: retry,
          times: 20
        })),
        Effect.sync(released)
      ))
    }

    const onMessage = (raw: string) => {
      let m: Message
      try {
        m = JSON.parse(raw)
      } catch {
        return
      }
      const generation = Number(m.g)
      const lane = lanes.get(m.k)
      switch (m.x) {
        case "e": {
          const event: scripts.Waiting = { seq: m.s ?? 0, at: 0, terminal: m.t, frame: m.f ?? "" }
          if (lane !== undefined && lane.generation === generation) {
            lane.receive(event)
            return
          }
          // For a connection still being set up here: kept until it is in place.
          for (const claim of claims.get(m.k) ?? []) {
            if (claim.generation === undefined || claim.generation === generation) {
              if (claim.events.length < limits.capacity) claim.events.push(event)
            }
          }
          return
        }
        case "r": {
          for (const claim of claims.get(m.k) ?? []) claim.replaced.add(generation)
          if (lane !== undefined && lane.generation === generation) replace(lane)
          // Not (or no longer) here: the new owner need not wait.
          else fork(Effect.ignore(ack(m.k, generation, 0, "handover")))
          return
        }
        case "h": {
          for (const claim of claims.get(m.k) ?? []) {
            claim.handedOver.add(generation)
            if (claim.generation === generation) Deferred.doneUnsafe(claim.wake, Effect.void)
          }
          return
        }
        case "d": {
          if (lane !== undefined && lane.generation === generation) lane.close(m.r ?? "closed")
          return
        }
      }
    }

    const subscription = yield* channel.run(redis, {
      channel: keys.nodeChannel(config.prefix, config.node),
      node: config.node,
      pingMillis: config.pingMillis,
      onMessage,
      // Events published while the subscription was down are in the outboxes.
      onSubscribed: (first) => {
        if (first) return
        metrics.resubscriptions.updateUnsafe(1, context)
        for (const lane of lanes.values()) lane.pull()
      }
    })
    // A subscription that cannot be made at start is a clear error, not a hang.
    yield* subscription.ready.pipe(
      Effect.timeoutOrElse({
        duration: config.timeoutMillis,
        orElse: () =>
          Effect.fail(
            config.unavailable(
              `subscribe to ${keys.nodeChannel(config.prefix, config.node)}`,
              `no subscription within ${config.timeoutMillis} ms`
            )
          )
      })
    )

    // Renewals: keep live registrations from expiring, notice a replacement
    // whose message was lost, re-register after Redis lost its data, and
    // catch up on events whose message was lost.
    const renewOne = (lane: Lane) =>
      Effect.matchEffect(
        client.renew(lane.key, lane.generation, lane.token),
        {
          onFailure: () => Effect.void,
          onSuccess: ([status, last, acked]) =>
            Effect.sync(() => {
              if (lane.ended) return
              if (status === "replaced") return replace(lane)
              if (lane.token !== undefined) fork(Effect.ignore(client.refresh(lane.token)))
              if (status === "adopted") {
                // Redis lost the key: its numbering starts again.
                lane.lastSeq = acked
                lane.taken = acked
                lane.suspect = 0
                return lane.pull()
              }
              const behind = lane.suspect > lane.lastSeq
              lane.suspect = last
              if (behind) lane.pull()
            })
        }
      )
    if (config.renewMillis > 0) {
      fork(Effect.forever(Effect.andThen(
        Effect.sleep(config.renewMillis),
        Effect.suspend(() => Effect.forEach([...lanes.values()], renewOne, { concurrency: 16, discard: true }))
      )))
    }

    const encodeClose = (options: Registry.ConnectOptions) => (reason: string): ReadonlyArray<Uint8Array> =>
      (options.closeFrames?.(reason) ?? []).map(SseEncoder.encodeUnsafe)

    // A send script's answer, as `Registry.send` says it.
    const interpret = (
      key: string,
      [status, detail, overflowed, expired]: scripts.SendReply
    ): Effect.Effect<Registry.SendResult, Registry.KeyClosedError | Registry.PendingFullError> => {
      counters.droppedOverflow += Number(overflowed)
      counters.droppedExpired += Number(expired)
      switch (status) {
        case "closed":
          return Effect.fail(new Registry.KeyClosedError({ key, reason: String(detail) }))
        case "full":
          return Effect.fail(new Registry.PendingFullError({ key, capacity: limits.capacity }))
        case "dropped":
          return Effect.succeed("dropped")
        case "delivered":
          return Effect.succeed("delivered")
        default:
          return Effect.succeed("pending")
      }
    }

    const send = (
      key: string,
      event: SseEvent.Frame,
      options: Registry.SendOptions
    ): Effect.Effect<Registry.SendResult, Registry.SendError> =>
      Effect.gen(function*() {
        const text = SseEncoder.encodeText(event)
        if (Result.isFailure(text)) return yield* Effect.fail(text.failure)
        return yield* interpret(key, yield* client.send(key, text.success, options.terminal))
      })

    const claimKey = (key: string, claim: Claim, token: string | undefined) =>
      Effect.gen(function*() {
        // The token's entry first: a claim whose entry could not be written would name nobody.
        if (token !== undefined) yield* client.index(key, token)
        const reply = yield* client.claim(key, token)
        const generation = Number(reply[0])
        claim.generation = generation
        counters.droppedExpired += Number(reply[3])
        const closed = reply[4] === null || reply[4] === undefined
          ? undefined
          : { reason: String(reply[4]), frame: String(reply[5]) }
        let entries = reply.slice(6).map((m) => scripts.parseMember(String(m)))
        let stale = false
        // Same node: the previous connection here is replaced at once.
        const previous = lanes.get(key)
        if (previous !== undefined && previous.generation !== generation) replace(previous)
        if (Number(reply[1]) > 0) {
          // The previous owner acknowledges what its connection took, then
          // says so; if it cannot (it died meanwhile), go on after a while.
          if (!claim.handedOver.has(generation)) {
            yield* Effect.timeoutOption(Deferred.await(claim.wake), config.handoverMillis)
          }
          const pulled = yield* Effect.mapError(
            pull(key, generation, 0),
            (cause) =>
              new Registry.RegistryUnavailableError({
                key,
                operation: "connect",
                reason: `Redis at ${config.address} did not hand the key's outbox over: ${describeCause(cause)}`,
                cause
              })
          )
          stale = pulled.stale
          entries = [...pulled.entries]
        }
        return { generation, acked: Number(reply[2]), closed, entries, stale }
      })

    const connectWith = (
      key: string,
      token: string | undefined,
      options: Registry.ConnectOptions,
      onReleased?: ((outcome: Connection.Outcome) => void) | undefined
    ): Effect.Effect<Connection.Connection, Registry.ConnectError, Scope.Scope> =>
      Effect.gen(function*() {
        if (config.exists !== undefined && !lanes.has(key)) {
          // A key Redis holds something for (events were sent to it) exists.
          if (!(yield* client.known(key)) && !(yield* config.exists(key))) {
            return yield* new Registry.UnknownKeyError({ key })
          }
        }
        if (!lanes.has(key) && lanes.size + claims.size >= config.maxKeys) {
          return yield* new Registry.TooManyKeysError({ maxKeys: config.maxKeys })
        }
        const claim: Claim = {
          generation: undefined,
          handedOver: new Set(),
          replaced: new Set(),
          wake: Deferred.makeUnsafe(),
          events: []
        }
        const forKey = claims.get(key) ?? new Set<Claim>()
        forKey.add(claim)
        claims.set(key, forKey)
        const forget = () => {
          forKey.delete(claim)
          if (forKey.size === 0 && claims.get(key) === forKey) claims.delete(key)
        }
        const claimed = yield* Effect.onExit(claimKey(key, claim, token), (exit) =>
          Effect.sync(() => {
            if (exit._tag === "Failure") forget()
          }))
        const { generation, acked, closed, entries, stale } = claimed
        const lane = new Lane(key, generation, acked, {
          pull: (after) => {
            metrics.keyedPulls.updateUnsafe(1, context)
            return pull(key, generation, after)
          },
          ack: (seq) => ack(key, generation, seq, "ack"),
          run: fork,
          retry,
          capacity: limits.capacity,
          onStale: () => replace(lane)
        })
        lane.closeFrames = encodeClose(options)
        let closeWith: string | undefined = stale ? "replaced" : undefined
        const { closeFrames: _, preamble, ...connectionOptions } = options
        // The first frames: the preamble, then the outbox the claim took (up
        // to a terminal event), or the key's end when an earlier connection
        // already took its terminal event.
        const frames = (preamble ?? []).map(SseEncoder.encodeUnsafe)
        for (const w of entries) {
          if (closeWith !== undefined || w.seq <= lane.lastSeq) continue
          frames.push(utf8(w.frame))
          lane.lastSeq = w.seq
          lane.taken = w.seq
          if (w.terminal !== undefined) closeWith = w.terminal
        }
        if (closeWith === undefined && closed !== undefined) {
          frames.push(utf8(closed.frame))
          closeWith = closed.reason
        }
        const connection = yield* Connection.make({ ...connectionOptions, preamble: frames })
        // In the same synchronous step as its start: registered, then what
        // arrived during the claim (offered after the preamble, in order).
        forget()
        lane.connection = connection
        // Replaced before it started (another node claimed the key meanwhile).
        if (closeWith === undefined && claim.replaced.has(generation)) closeWith = "replaced"
        if (closeWith === undefined) {
          lanes.set(key, lane)
          if (token !== undefined) {
            lane.token = token
            tokens.set(token, lane)
          }
          for (const event of claim.events) lane.receive(event)
          if (lane.taken > acked) fork(Effect.ignore(ack(key, generation, lane.taken, "ack")))
        } else {
          lane.ended = true
          if (token !== undefined) fork(Effect.ignore(client.forget(token)))
          connection.closeUnsafe(closeWith, lane.closeFrames(closeWith))
        }
        connection.addObserver((outcome) =>
          end(lane, () => {
            try {
              onReleased?.(outcome)
            } catch {
              // The caller's callback must not throw; one that does costs only itself.
            }
          })
        )
        return connection
      })

    const disconnect = (key: string, reason: string): Effect.Effect<boolean, Registry.RegistryUnavailableError> =>
      Effect.map(client.disconnect(key, reason), (told) => told > 0)

    // A token's key: this node's own connection at once, else Redis' entry.
    const keyOfToken = (token: string, operation: "send" | "disconnect") =>
      Effect.flatMap(
        Effect.suspend(() => {
          const lane = tokens.get(token)
          return lane !== undefined && !lane.ended ? Effect.succeed(lane.key) : client.resolve(token, operation)
        }),
        (key) => key === undefined ? Effect.fail(new UnknownTokenError({ token })) : Effect.succeed(key)
      )

    const sendToken: Tokens["sendToken"] = (token, event, options) =>
      Effect.gen(function*() {
        const text = SseEncoder.encodeText(event)
        if (Result.isFailure(text)) return yield* Effect.fail(text.failure)
        const key = yield* keyOfToken(token, "send")
        const reply = yield* client.send(key, text.success, options.terminal, token)
        if (reply[0] === "gone") return yield* new UnknownTokenError({ token })
        return yield* interpret(key, reply)
      })

    const disconnectToken: Tokens["disconnectToken"] = (token, reason) =>
      Effect.gen(function*() {
        const key = yield* keyOfToken(token, "disconnect")
        const told = yield* client.disconnect(key, reason, token)
        if (told < 0) return yield* new UnknownTokenError({ token })
        return told > 0
      })

    return {
      send,
      connect: (key, options) => connectWith(key, undefined, options),
      connectWith,
      sendToken,
      disconnectToken,
      localKey: (token) => {
        const lane = tokens.get(token)
        return lane !== undefined && !lane.ended && lane.connection?.accepting() === true ? lane.key : undefined
      },
      disconnect,
      isLive: (key) => lanes.get(key)?.connection?.accepting() ?? false,
      pendingCount: (key) => lanes.get(key)?.waiting ?? 0,
      stats: () => {
        let pending = 0
        let pendingBytes = 0
        for (const lane of lanes.values()) {
          pending += lane.waiting
          pendingBytes += lane.waitingBytes
        }
        // No byte budget across keys here: each key's outbox is bounded in Redis.
        return {
          keys: lanes.size,
          live: lanes.size,
          pending,
          pendingBytes,
          droppedBudget: 0,
          refusedBudget: 0,
          ...counters
        }
      },
      counters
    }
  })
