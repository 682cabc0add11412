/**
 * Checks of options, shared by every sluice package and offered to code that
 * builds on sluice (a `Log.Store`, a `Registry.Backend`, a route helper).
 *
 * A setting that cannot work (a capacity of `NaN`, a negative limit, a
 * duration that is not one) is a programming error. sluice reports it when
 * the thing is made, naming the option and the value, instead of letting it
 * become a mailbox that never has room or a limit that never applies. The
 * report is a `RangeError` whose message reads
 * `"<where>: invalid <option> (got <value>)"`; thrown inside an effect it is
 * a defect with that message.
 *
 * Why this is public: the other sluice packages (`@sluice/http`,
 * `@sluice/redis`, `@sluice/gateway`) use only `@sluice/core`'s public
 * exports, as a user's code does, so the one implementation of these checks
 * is exported here, narrowly (three functions), rather than copied into each
 * package.
 *
 * @example
 * ```ts
 * import type { Duration } from "effect"
 * import { OptionCheck } from "@sluice/core"
 *
 * interface Options {
 *   readonly capacity?: number | undefined
 *   readonly timeout?: Duration.Input | undefined
 * }
 * const resolve = (options: Options) => {
 *   const { capacity, timeout } = options
 *   OptionCheck.check("MyStore", "capacity (a finite number, at least 1)", OptionCheck.atLeast(capacity, 1), capacity)
 *   const timeoutMillis = OptionCheck.millis(timeout, 5_000)
 *   OptionCheck.check("MyStore", "timeout (a finite duration)", Number.isFinite(timeoutMillis), timeout)
 *   return { capacity: capacity ?? 64, timeoutMillis }
 * }
 * resolve({ capacity: Number.NaN }) // throws RangeError: MyStore: invalid capacity (a finite number, at least 1) (got NaN)
 * ```
 *
 * @since 0.2.0
 */
import type * as Duration from "effect/Duration"
import * as internal from "./internal/options.ts"

/**
 * Throws a `RangeError` naming `where` and the option `name` (with what it
 * expects, in words) when `ok` is `false`.
 *
 * @example
 * ```ts
 * import { OptionCheck } from "@sluice/core"
 *
 * const maxKeys = 0
 * OptionCheck.check("Registry", "maxKeys (a number, at least 1)", maxKeys >= 1, maxKeys)
 * // RangeError: Registry: invalid maxKeys (a number, at least 1) (got 0)
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const check: (where: string, name: string, ok: boolean, value: unknown) => void = internal.check

/**
 * `true` for `undefined` (an absent option takes its default) or a number of
 * at least `min`; `Infinity` counts only when `finite` is `false`. `NaN` and
 * non-numbers are `false`.
 *
 * @example
 * ```ts
 * import { OptionCheck } from "@sluice/core"
 *
 * OptionCheck.atLeast(undefined, 1) // true
 * OptionCheck.atLeast(Infinity, 1) // false
 * OptionCheck.atLeast(Infinity, 1, false) // true
 * OptionCheck.atLeast(Number.NaN, 1, false) // false
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const atLeast: (value: unknown, min: number, finite?: boolean) => boolean = internal.atLeast

/**
 * A duration option in milliseconds: `fallback` when absent, `NaN` when it
 * is not a duration (for {@link check} to report).
 *
 * @example
 * ```ts
 * import { OptionCheck } from "@sluice/core"
 *
 * OptionCheck.millis("2 seconds", 0) // 2000
 * OptionCheck.millis(undefined, 5_000) // 5000
 * OptionCheck.millis("soon" as never, 0) // NaN
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const millis: (input: Duration.Input | undefined, fallback: number) => number = internal.millis
