/**
 * Byte helpers for the hot path.
 *
 * On Node, `Buffer.from(string)` is several times faster than
 * `TextEncoder.encode` for the short strings of SSE frames (it allocates from
 * a shared pool) and `Buffer.concat` copies without zero-filling first. Both
 * produce plain `Uint8Array`s as far as callers are concerned. Elsewhere the
 * web APIs are used.
 *
 * @internal
 */

/** The part of Node's `Buffer` used here. */
interface NodeBufferLike {
  from(text: string, encoding: "utf8"): Uint8Array
  byteLength(text: string, encoding: "utf8"): number
  concat(list: ReadonlyArray<Uint8Array>, totalLength: number): Uint8Array
}
const NodeBuffer = (globalThis as unknown as { readonly Buffer?: NodeBufferLike }).Buffer

const encoder = new TextEncoder()

/** @internal */
export const utf8 = (text: string): Uint8Array =>
  NodeBuffer === undefined ? encoder.encode(text) : NodeBuffer.from(text, "utf8")

/**
 * The UTF-8 size of well-formed text, without encoding it.
 *
 * @internal
 */
export const utf8Length = (text: string): number =>
  NodeBuffer === undefined ? countUtf8(text) : NodeBuffer.byteLength(text, "utf8")

/** {@link utf8Length} without Node's Buffer. @internal */
export const countUtf8 = (text: string): number => {
  let size = text.length
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    // 2 bytes below U+0800, 3 up to U+FFFF; a surrogate pair (2 units) is 4.
    if (unit >= 0x80) size += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2
  }
  return size
}

/** @internal */
export const join = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  if (NodeBuffer !== undefined) return NodeBuffer.concat(chunks, size)
  const out = new Uint8Array(size)
  let offset = 0
  for (let i = 0; i < chunks.length; i++) {
    out.set(chunks[i]!, offset)
    offset += chunks[i]!.byteLength
  }
  return out
}
