/**
 * A small incremental parser for `text/event-stream` bodies, as the WHATWG HTML spec's
 * "interpreting an event stream" describes, for the load clients. It is fed the body's bytes
 * in chunks of any size (lines, CRLF pairs and UTF-8 sequences may be split across chunks)
 * and calls back once per dispatched event.
 *
 * Written for throughput, so that the load clients are not what limits a benchmark: it works
 * on bytes (line terminators and field names are ASCII), copies each event's data into one
 * reused buffer, and decodes text only when asked (`data`, `lastEventId`). The load clients
 * use it instead of the library's own parser so the benchmark does not depend on the code it
 * measures.
 */

const LF = 10
const CR = 13
const COLON = 58
const SPACE = 32

/** Called once per dispatched event; read the event from the parser. */
export type OnEvent = (event: SseParser) => void

const growTo = (buffer: Buffer, length: number): Buffer => {
  if (buffer.length >= length) return buffer
  const bigger = Buffer.allocUnsafe(Math.max(length, buffer.length * 2))
  buffer.copy(bigger)
  return bigger
}

// Field names as bytes, compared one by one: this runs for every line of every stream.
const isData = (b: Buffer, i: number) => b[i] === 100 && b[i + 1] === 97 && b[i + 2] === 116 && b[i + 3] === 97
const isId = (b: Buffer, i: number) => b[i] === 105 && b[i + 1] === 100
const isEvent = (b: Buffer, i: number) =>
  b[i] === 101 && b[i + 1] === 118 && b[i + 2] === 101 && b[i + 3] === 110 && b[i + 4] === 116
const isRetry = (b: Buffer, i: number) =>
  b[i] === 114 && b[i + 1] === 101 && b[i + 2] === 116 && b[i + 3] === 114 && b[i + 4] === 121

export class SseParser {
  /** The reconnection time last set by a valid `retry` field, if any. */
  retry: number | undefined = undefined
  /** The dispatched event's type (`message` unless an `event` field set it). */
  type = "message"
  /**
   * The dispatched event's data, as UTF-8 bytes: `dataBytes[dataOffset .. dataOffset + dataLength)`.
   * Valid only during the callback: it may be a view into the chunk being parsed.
   */
  dataBytes: Buffer = Buffer.allocUnsafe(256)
  dataOffset = 0
  dataLength = 0
  /** Whether `dataBytes` is this parser's own buffer (else a view into a chunk). */
  private dataOwned = true
  private own: Buffer = this.dataBytes
  private readonly onEvent: OnEvent
  private rest: Buffer | undefined = undefined
  private started = false
  private skipLf = false
  private dataLines = 0
  private eventType = ""
  // The last event ID as bytes: a view into a chunk until the end of `feed` copies it.
  private idBytes: Buffer = Buffer.allocUnsafe(64)
  private idOffset = 0
  private idLength = 0
  private idOwned = true
  private ownId: Buffer = this.idBytes
  private idText: string | undefined = ""

  constructor(onEvent: OnEvent) {
    this.onEvent = onEvent
  }

  /** The dispatched event's data as text. */
  get data(): string {
    return this.dataBytes.toString("utf8", this.dataOffset, this.dataOffset + this.dataLength)
  }

  /** The last event ID (it carries over to later events until an `id` field changes it). */
  get lastEventId(): string {
    if (this.idText === undefined) {
      this.idText = this.idBytes.toString("utf8", this.idOffset, this.idOffset + this.idLength)
    }
    return this.idText
  }

  /** Feeds the next chunk of the body. */
  feed(chunk: Uint8Array): void {
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (this.rest !== undefined) {
      bytes = Buffer.concat([this.rest, bytes])
      this.rest = undefined
    }
    const length = bytes.length
    let pos = 0
    if (!this.started) {
      // A BOM may only open the stream; wait until 3 bytes are there to tell.
      if (length < 3 && bytes[0] === 0xEF) {
        this.rest = Buffer.from(bytes)
        return
      }
      this.started = length > 0
      if (length >= 3 && bytes[0] === 0xEF && bytes[1] === 0xBB && bytes[2] === 0xBF) pos = 3
    }
    if (this.skipLf && pos < length) {
      this.skipLf = false
      if (bytes[pos] === LF) pos++
    }
    // CR is rare: find it once and only look again when it has been passed.
    let nextCr = bytes.indexOf(CR, pos)
    while (pos < length) {
      let end = bytes.indexOf(LF, pos)
      let terminator = 1
      if (nextCr !== -1 && (end === -1 || nextCr < end)) {
        end = nextCr
        if (end + 1 < length) {
          if (bytes[end + 1] === LF) terminator = 2
        } else {
          // A CR ending the chunk: a LF starting the next one belongs to it.
          this.skipLf = true
        }
        nextCr = bytes.indexOf(CR, end + terminator)
      }
      if (end === -1) break
      this.line(bytes, pos, end)
      pos = end + terminator
    }
    // Copy what outlives this call: the chunk's memory may be reused by its owner.
    if (pos < length) this.rest = Buffer.from(bytes.subarray(pos))
    if (this.dataLines > 0 && !this.dataOwned) this.appendData(Buffer.alloc(0), 0, 0, false)
    if (!this.idOwned) {
      this.ownId = growTo(this.ownId, this.idLength)
      this.idBytes.copy(this.ownId, 0, this.idOffset, this.idOffset + this.idLength)
      this.idBytes = this.ownId
      this.idOffset = 0
      this.idOwned = true
    }
  }

  /** Appends bytes to the data, moving it into the parser's own buffer first if needed. */
  private appendData(bytes: Buffer, start: number, end: number, newLine: boolean): void {
    const at = this.dataLength + (newLine ? 1 : 0)
    if (!this.dataOwned) {
      this.own = growTo(this.own, at + end - start)
      this.dataBytes.copy(this.own, 0, this.dataOffset, this.dataOffset + this.dataLength)
      this.dataBytes = this.own
      this.dataOffset = 0
      this.dataOwned = true
    } else {
      this.own = growTo(this.own, at + end - start)
      this.dataBytes = this.own
    }
    if (newLine) this.own[at - 1] = LF
    bytes.copy(this.own, at, start, end)
    this.dataLength = at + end - start
  }

  private line(bytes: Buffer, start: number, end: number): void {
    if (start === end) return this.dispatch()
    if (bytes[start] === COLON) return
    let colon = start
    while (colon < end && bytes[colon] !== COLON) colon++
    let valueStart = colon + 1
    if (valueStart < end && bytes[valueStart] === SPACE) valueStart++
    if (valueStart > end) valueStart = end
    const nameLength = colon - start
    if (nameLength === 4 && isData(bytes, start)) {
      if (this.dataLines === 0) {
        // The common case, one data line: no copy, a view into the chunk.
        this.dataBytes = bytes
        this.dataOffset = valueStart
        this.dataLength = end - valueStart
        this.dataOwned = false
      } else {
        this.appendData(bytes, valueStart, end, true)
      }
      this.dataLines++
    } else if (nameLength === 2 && isId(bytes, start)) {
      for (let i = valueStart; i < end; i++) if (bytes[i] === 0) return
      this.idBytes = bytes
      this.idOffset = valueStart
      this.idLength = end - valueStart
      this.idOwned = false
      this.idText = undefined
    } else if (nameLength === 5 && isEvent(bytes, start)) {
      this.eventType = bytes.toString("utf8", valueStart, end)
    } else if (nameLength === 5 && isRetry(bytes, start)) {
      let value = 0
      for (let i = valueStart; i < end; i++) {
        const digit = bytes[i]! - 48
        if (digit < 0 || digit > 9) return
        value = value * 10 + digit
      }
      if (end > valueStart) this.retry = value
    }
  }

  private dispatch(): void {
    if (this.dataLines === 0) {
      this.eventType = ""
      return
    }
    this.type = this.eventType === "" ? "message" : this.eventType
    this.eventType = ""
    this.onEvent(this)
    this.dataLines = 0
    this.dataLength = 0
    this.dataOffset = 0
    this.dataBytes = this.own
    this.dataOwned = true
  }
}

const bytes = (...parts: ReadonlyArray<string | ReadonlyArray<number>>) =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))))

/** Cases from the spec, checked by the runner before it measures anything. */
export const selfCheck = (): void => {
  const cases: ReadonlyArray<readonly [ReadonlyArray<string | Buffer>, string]> = [
    [["data: a\n\n"], "message|a|"],
    [["\uFEFFdata:a\r\n", "\r\n"], "message|a|"],
    [[bytes([0xEF]), bytes([0xBB, 0xBF], "data: b\n\n")], "message|b|"],
    [["id: 7\nevent: tick\ndata: x\ndata:  y\n\n"], "tick|x\n y|7"],
    [["data\n\ndata:\n\n"], "message||,message||"],
    [[": comment\nretry: 10\n\nfoo: bar\n\n"], ""],
    [["data: one\r", "\ndata: two\r\r"], "message|one\ntwo|"],
    [["id: 1\ndata: a\n\nid\ndata: b\n\n"], "message|a|1,message|b|"],
    [["da", "ta: sp", "lit\n", "\n", "data: tail"], "message|split|"],
    [["id: a\0b\ndata: n\n\n"], "message|n|"],
    [["event: x\n\ndata: y\n\n"], "message|y|"],
    [["data: \u00e9\u20ac\n\n"], "message|\u00e9\u20ac|"]
  ]
  for (const [chunks, expected] of cases) {
    const got: Array<string> = []
    const parser = new SseParser((e) => got.push(`${e.type}|${e.data}|${e.lastEventId}`))
    // Fed as given, then byte by byte, so that every split point (inside UTF-8 too) is tried.
    const encoded = chunks.map((c) => (typeof c === "string" ? bytes(c) : c))
    for (const chunk of encoded) parser.feed(chunk)
    const bytewise: Array<string> = []
    const slow = new SseParser((e) => bytewise.push(`${e.type}|${e.data}|${e.lastEventId}`))
    for (const byte of Buffer.concat(encoded)) slow.feed(Buffer.from([byte]))
    if (got.join(",") !== expected || bytewise.join(",") !== expected) {
      throw new Error(
        `SseParser self-check failed for ${JSON.stringify(chunks)}: ${JSON.stringify(got.join(","))}, ` +
          `byte by byte ${JSON.stringify(bytewise.join(","))}`
      )
    }
  }
}
