/**
 * Per-client rate limits for the demo's write routes: a token bucket per
 * client key that refills at `rate` per second and holds `4 × rate` (a burst
 * of four seconds' worth). The map of buckets is bounded: when it reaches
 * `maxClients`, buckets that have refilled completely (their clients were
 * quiet) are forgotten, and if none has, the new client is refused like an
 * over-limit one rather than growing the map.
 */

/** A rate limiter over client keys. */
export interface RateLimit {
  /** Takes one token for `key`: `undefined` when allowed, else the seconds until a token is back. */
  readonly take: (key: string) => number | undefined
  readonly size: () => number
}

interface Bucket {
  tokens: number
  at: number
}

/** `rate` 0 allows everything. `now` is in milliseconds (injectable for tests). */
export const make = (rate: number, maxClients = 10_000, now: () => number = Date.now): RateLimit => {
  const buckets = new Map<string, Bucket>()
  const capacity = Math.max(1, rate * 4)
  const refill = (bucket: Bucket, t: number) => {
    bucket.tokens = Math.min(capacity, bucket.tokens + ((t - bucket.at) / 1000) * rate)
    bucket.at = t
  }
  const prune = (t: number) => {
    for (const [key, bucket] of buckets) {
      refill(bucket, t)
      if (bucket.tokens >= capacity) buckets.delete(key)
    }
  }
  return {
    take: (key) => {
      if (rate <= 0) return undefined
      const t = now()
      let bucket = buckets.get(key)
      if (bucket === undefined) {
        if (buckets.size >= maxClients) prune(t)
        if (buckets.size >= maxClients) return 1
        bucket = { tokens: capacity, at: t }
        buckets.set(key, bucket)
      }
      refill(bucket, t)
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1
        return undefined
      }
      return Math.max(1, Math.ceil((1 - bucket.tokens) / rate))
    },
    size: () => buckets.size
  }
}
