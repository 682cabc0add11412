/**
 * Streaming UTF-8 decoding for the SSE parser.
 *
 * We carry an incomplete trailing sequence (at most 3 bytes) over to the next chunk ourselves and
 * only ever hand the TextDecoder pieces that start and end where the WHATWG UTF-8 decoder is in
 * its initial state. The text is then exactly what one streaming `TextDecoder` (fatal: false)
 * gives, including where U+FFFD replaces invalid bytes, and we are free to pick the faster of
 * Node 22's two decode paths per piece: the one-shot path is ~4x faster for ASCII, the
 * `stream: true` path ~2-3x faster for non-ASCII text (bench/parser measures both cases). The
 * previous piece decides which path the next one takes; the result is the same either way.
 *
 * @internal
 */
/** Number of bytes in the sequence started by `lead`, or 0 when it cannot start one. */
const sequenceLength = (lead: number): number =>
  lead < 0x80 ? 1 : lead < 0xc2 ? 0 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : lead < 0xf5 ? 4 : 0

/** Whether `byte` can follow the first `index` bytes of a sequence starting with `lead`. */
const continues = (lead: number, index: number, byte: number): boolean => {
  if (index === 1) {
    // The second byte's range excludes overlong forms, surrogates and values above U+10FFFF.
    if (lead === 0xe0) return byte >= 0xa0 && byte <= 0xbf
    if (lead === 0xed) return byte >= 0x80 && byte <= 0x9f
    if (lead === 0xf0) return byte >= 0x90 && byte <= 0xbf
    if (lead === 0xf4) return byte >= 0x80 && byte <= 0x8f
  }
  return byte >= 0x80 && byte <= 0xbf
}

/**
 * Offset of the first byte in `bytes[start, end)` where the UTF-8 decoder reports an error
 * (an invalid or truncated sequence starts there), or -1 when the range is valid.
 */
export const firstInvalid = (bytes: Uint8Array, start: number, end: number): number => {
  let i = start
  while (i < end) {
    const lead = bytes[i]!
    if (lead < 0x80) {
      i++
      continue
    }
    const length = sequenceLength(lead)
    if (length === 0 || i + length > end) return i
    for (let k = 1; k < length; k++) {
      if (!continues(lead, k, bytes[i + k]!)) return i
    }
    i += length
  }
  return -1
}

/**
 * Where an incomplete but still valid sequence starts at the end of `bytes`, or `bytes.length`
 * when the chunk ends on a boundary (or with bytes that are already invalid, which decode to
 * U+FFFD the same way whether or not more input follows).
 */
const incompleteTail = (bytes: Uint8Array): number => {
  const n = bytes.length
  const stop = n > 3 ? n - 3 : 0
  for (let j = n - 1; j >= stop; j--) {
    const byte = bytes[j]!
    if (byte < 0x80) return n
    if (byte >= 0xc0) {
      const length = sequenceLength(byte)
      if (length === 0 || n - j >= length) return n
      for (let k = j + 1; k < n; k++) {
        if (!continues(byte, k - j, bytes[k]!)) return n
      }
      return j
    }
  }
  return n
}

const streaming = { stream: true }

/** A UTF-8 decoder that can be fed arbitrary slices of a byte stream. */
export class Utf8Stream {
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true })
  private ascii = true // the last piece was ASCII only: use the one-shot path
  private readonly carry = new Uint8Array(4)
  private carried = 0
  /** In `validate` mode: set by `decode`/`flush` when they stopped at invalid input. */
  invalid = false
  private readonly validate: boolean

  /** With `validate`, decoding stops before the first invalid byte and sets `invalid`. */
  constructor(validate: boolean) {
    this.validate = validate
  }

  reset(): void {
    this.carried = 0
    this.invalid = false
  }

  /** Whether bytes of an incomplete character are waiting for the next chunk. */
  get pending(): boolean {
    return this.carried > 0
  }

  decode(input: Uint8Array): string {
    let bytes = input
    let head = ""
    if (this.carried > 0) {
      const lead = this.carry[0]!
      const length = sequenceLength(lead)
      let i = 0
      while (this.carried < length && i < bytes.length && continues(lead, this.carried, bytes[i]!)) {
        this.carry[this.carried++] = bytes[i++]!
      }
      if (this.carried < length && i === bytes.length) return ""
      if (this.validate && this.carried < length) {
        // The carried sequence was cut short by a byte that cannot continue it.
        this.carried = 0
        this.invalid = true
        return ""
      }
      head = this.decoder.decode(this.carry.subarray(0, this.carried))
      this.carried = 0
      bytes = bytes.subarray(i)
    }
    const n = bytes.length
    const cut = n > 0 && bytes[n - 1]! >= 0x80 ? incompleteTail(bytes) : n
    for (let k = cut; k < n; k++) this.carry[this.carried++] = bytes[k]!
    if (cut === 0) return head
    const whole = cut === n ? bytes : bytes.subarray(0, cut)
    const body = this.ascii ? this.decoder.decode(whole) : this.decoder.decode(whole, streaming)
    this.ascii = body.length === cut
    if (this.validate && body.indexOf("\uFFFD") !== -1) {
      // U+FFFD may also be a genuine character (EF BF BD): only the bytes can tell.
      const bad = firstInvalid(whole, 0, cut)
      if (bad !== -1) {
        this.carried = 0
        this.invalid = true
        return head + this.decoder.decode(whole.subarray(0, bad))
      }
    }
    return head === "" ? body : head + body
  }

  /** Ends the byte stream: a dangling incomplete character becomes U+FFFD (or `invalid`). */
  flush(): string {
    if (this.carried === 0) return ""
    const text = this.decoder.decode(this.carry.subarray(0, this.carried))
    this.carried = 0
    if (this.validate) {
      this.invalid = true
      return ""
    }
    return text
  }
}
