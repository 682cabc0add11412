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
export const LabelSite = Context.Reference<string | undefined>("@sluice/core/testing/LabelSite", {
  defaultValue: () => undefined
})

const kitFrame = /node_modules|node:|[\\/]src[\\/]testing[\\/]|[\\/]src[\\/]testing\.ts:|^new Promise|^<anonymous>/

/**
 * The first user frame of the current stack, as `at fn (file:line:col)`
 * without the `at `, or `undefined` when there is none.
 *
 * @internal
 */
export const capture = (): string | undefined => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 20
  const stack = new Error().stack
  Error.stackTraceLimit = limit
  if (stack === undefined) return undefined
  for (const line of stack.split("\n").slice(1)) {
    const frame = line.trim().replace(/^at /, "")
    if (!kitFrame.test(frame)) return frame
  }
  return undefined
}
