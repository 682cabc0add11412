/**
 * From what Redis carries to what a hub writes: the id line and the fields
 * of each entry, encoded to UTF-8 once per node.
 *
 * A burst is encoded as one run: when it is all ASCII (the usual case: JSON
 * escapes everything else only if asked, but ids and field names are ASCII),
 * each frame is a view of one buffer, one encoder call per burst.
 *
 * @internal
 */
import { Log } from "@sluice/core"
import { decodeCallerId } from "./logScripts.ts"

const encoder = new TextEncoder()

/** @internal */
export const utf8 = (text: string): Uint8Array => encoder.encode(text)

/**
 * The wire texts of a burst: the log's id line unless the entry carries the
 * publisher's (`callerIds` as stored: see `encodeCallerId`).
 *
 * @internal
 */
export const texts = (
  epoch: string,
  first: number,
  fields: ReadonlyArray<string>,
  callerIds: ReadonlyArray<string> | undefined
): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < fields.length; i++) {
    const own = decodeCallerId(callerIds?.[i])
    out.push(Log.frameText(own ?? Log.formatId(epoch, first + i), fields[i]!))
  }
  return out
}

/** Encodes texts, sharing one buffer when they are all ASCII. @internal */
export const encodeAll = (frames: ReadonlyArray<string>): Array<Uint8Array> => {
  if (frames.length === 1) return [utf8(frames[0]!)]
  let chars = 0
  for (const f of frames) chars += f.length
  const run = utf8(frames.join(""))
  if (run.byteLength !== chars) return frames.map(utf8)
  const out: Array<Uint8Array> = []
  let offset = 0
  for (let i = 0; i < frames.length; i++) {
    const end = offset + frames[i]!.length
    out.push(run.subarray(offset, end))
    offset = end
  }
  return out
}
