/**
 * Words for what went wrong in Redis, for error messages.
 *
 * @internal
 */

/** The most specific message in a cause chain (a `RedisError` wraps node-redis' error). @internal */
export const describeCause = (cause: unknown): string => {
  if (cause === undefined || cause === null) return ""
  if (typeof cause === "object" && "cause" in cause && (cause as { cause: unknown }).cause !== undefined) {
    const inner = describeCause((cause as { cause: unknown }).cause)
    if (inner !== "") return inner
  }
  if (cause instanceof Error && cause.message !== "") return cause.message
  if (typeof cause === "object" && "message" in cause && typeof cause.message === "string") return cause.message
  return String(cause)
}
