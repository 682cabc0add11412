/**
 * Where in the user's code something was written: the first stack frame that
 * is neither effect's, the kit's, nor Node's.
 *
 * @internal
 */
import * as Context from "effect/Context"

/**
 * The source position where a fiber's label was set (`FiberLabel.set`), in
 * the context of the fibers forked inside it.
 *
 * @internal
 */
export const LabelSite = Context.Reference<Site | undefined>("@sluice/core/testing/LabelSite", {
  defaultValue: () => undefined
})

/**
 * A captured call stack, read only when a report needs it (formatting a
 * stack costs far more than capturing one).
 *
 * @internal
 */
export interface Site {
  readonly error: Error
}

const kitFrame = /node_modules|node:|[\\/]src[\\/]testing[\\/]|[\\/]src[\\/]testing\.ts:|^new Promise|^<anonymous>/

/**
 * The label each fiber had when it last entered a `FiberLabel.set` region:
 * reports name fibers that have already left it (or ended).
 *
 * @internal
 */
export const lastLabel = new WeakMap<object, string>()

/** Captures the current stack (cheap: nothing is formatted yet). @internal */
export const capture = (): Site => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 16
  const error = new Error()
  Error.stackTraceLimit = limit
  return { error }
}

/**
 * The first user frame of a captured stack, as `fn (file:line:col)`, or
 * `undefined` when there is none.
 *
 * @internal
 */
export const format = (site: Site): string | undefined => {
  const stack = site.error.stack
  if (stack === undefined) return undefined
  const cwd = (globalThis as { process?: { cwd?: () => string } }).process?.cwd?.()
  for (const line of stack.split("\n").slice(1)) {
    const frame = line.trim().replace(/^at /, "")
    if (kitFrame.test(frame)) continue
    // Paths relative to the working directory read better in a report.
    return cwd === undefined ? frame : frame.replace(`file://${cwd}/`, "").replace(`${cwd}/`, "")
  }
  return undefined
}
