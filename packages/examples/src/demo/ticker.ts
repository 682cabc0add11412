/**
 * A simulated market published through a hub: every subscriber of
 * `GET /api/ticker/stream` has its own bounded mailbox; a client that stops
 * reading is disconnected (and can resume from the history with its
 * Last-Event-ID) instead of slowing the others. With `REDIS_URL` the hub is
 * over a Redis log, shared by every demo node (each node's random walk
 * publishes to it too).
 */
import { Hub, Log } from "@sluice/core"
import { Context, Effect, Layer, Option, Random, Schedule, Schema } from "effect"

export const Publish = Schema.Struct({
  ticker: Schema.String.check(Schema.isPattern(/^[A-Z][A-Z0-9.]{0,11}$/)),
  price: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1e9, exclusiveMinimum: true }))
})
export type Publish = typeof Publish.Type

const tickers = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI"] as const

export class Ticker extends Context.Service<Ticker, {
  readonly hub: Hub.Hub
  readonly publish: (update: Publish) => Effect.Effect<Hub.Published, Hub.PublishError | Hub.UnserializableDataError>
}>()("demo/Ticker") {
  static readonly layer = (options: { readonly intervalMs: number }) =>
    Layer.effect(
      Ticker,
      Effect.gen(function*() {
        const history = { maxEvents: 5_000, maxAge: "10 minutes" } as const
        const settings = { maxEventBytes: 1_024, allowedEvents: ["price_update"] }
        // Over a shared log when there is a Log.Store (REDIS_URL), in memory otherwise.
        const store = yield* Effect.serviceOption(Log.Store)
        const hub = yield* Effect.orDie(
          Option.isSome(store)
            ? Effect.flatMap(store.value.open("ticker", history), (log) => Hub.make({ ...settings, log }))
            : Hub.make({ ...settings, history })
        )
        const publish = (update: Publish) =>
          Hub.publishJson(hub, { ...update, ts: Date.now() }, { event: "price_update" })
        const prices = new Map<string, number>(tickers.map((t, i) => [t, 100 + i * 37]))
        // A random walk: one ticker moves every interval.
        const tick = Effect.gen(function*() {
          const ticker = tickers[yield* Random.nextIntBetween(0, tickers.length - 1)]!
          const last = prices.get(ticker)!
          const next = Math.max(1, Math.round(last * (1 + (yield* Random.nextBetween(-0.01, 0.01))) * 100) / 100)
          prices.set(ticker, next)
          yield* Effect.orDie(publish({ ticker, price: next }))
        })
        yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(options.intervalMs)))
        return Ticker.of({ hub, publish })
      })
    )
}
