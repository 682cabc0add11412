/**
 * The push parser: WHATWG HTML "event stream interpretation", line by line, over decoded text.
 *
 * Hot-path notes: each chunk is decoded once (see parserUtf8.ts); line ends and colons are found
 * with `indexOf` on the decoded chunk, caching the next position of each so a chunk is scanned
 * at most once per character class; a line that spans chunks is kept as one pending string and
 * only joined when its terminator arrives.
 *
 * @internal
 */
import type { Event } from "../SseEvent.ts"
import { check } from "./options.ts"
import { type ParseRule, SseLimitError, SseParseError, type SseParserError } from "./parserErrors.ts"
import { Utf8Stream } from "./parserUtf8.ts"

/** @internal */
export interface ParserOptions {
  readonly onEvent: (event: Event) => void
  readonly onRetry?: ((millis: number) => void) | undefined
  readonly onComment?: ((text: string) => void) | undefined
  readonly onError?: ((error: SseParserError) => void) | undefined
  readonly strict?: boolean | undefined
  readonly maxLineSize?: number | undefined
  readonly maxEventSize?: number | undefined
  readonly lastEventId?: string | undefined
}

/** @internal */
export interface Parser {
  feed(chunk: Uint8Array | string): void
  end(): void
  reset(): void
  readonly lastEventId: string
}

/** @internal */
export const defaultMaxSize = 1024 * 1024

const LF = 10
const COLON = 58
const SPACE = 32
const BOM = 0xfeff
const OTHER = 0
const DATA = 1
const ID = 2
const EVENT = 3
const RETRY = 4

const checkSize = (name: string, value: number | undefined): number => {
  if (value === undefined) return defaultMaxSize
  const ok = value === Number.POSITIVE_INFINITY || (Number.isSafeInteger(value) && value > 0)
  check("SseParser", `${name} (a positive integer or Infinity)`, ok, value)
  return value
}

const isDigits = (s: string, start: number, end: number): boolean => {
  if (start === end) return false
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

class Engine {
  private readonly onEvent: (event: Event) => void
  private readonly onRetry: ((millis: number) => void) | undefined
  private readonly onComment: ((text: string) => void) | undefined
  private readonly onError: ((error: SseParserError) => void) | undefined
  private readonly strict: boolean
  private readonly maxLine: number
  private readonly maxEvent: number
  private readonly initialId: string
  private readonly utf8: Utf8Stream

  // Stream state.
  private bomChecked = false
  private skipLF = false // the previous chunk ended with CR: a leading LF belongs to it
  private pending = "" // an unterminated line (never empty while one exists)
  private lineNo = 0 // lines completed so far

  // Event state.
  private data = ""
  private dataLines = 0
  private dataSize = 0
  private type = ""
  private idBuffer: string
  lastEventId: string
  private blockStart = 0 // first line of the event not yet dispatched, 0 when none
  private scanText = "" // the chunk being processed, and the next colon in it (see colonIn)
  private scanColon = -2

  private failed = false
  // Bumped by reset/end/failure so a loop over a chunk notices a callback changed the state.
  private generation = 0

  constructor(options: ParserOptions) {
    if (typeof options?.onEvent !== "function") throw new TypeError("SseParser: onEvent must be a function")
    this.onEvent = options.onEvent
    this.onRetry = options.onRetry
    this.onComment = options.onComment
    this.onError = options.onError
    this.strict = options.strict === true
    this.maxLine = checkSize("maxLineSize", options.maxLineSize)
    this.maxEvent = checkSize("maxEventSize", options.maxEventSize)
    this.initialId = options.lastEventId ?? ""
    this.idBuffer = this.initialId
    this.lastEventId = this.initialId
    this.utf8 = new Utf8Stream(this.strict)
  }

  reset(): void {
    this.lastEventId = this.initialId
    this.restart()
  }

  // A new stream that resumes the last one: only the last event ID string survives.
  private restart(): void {
    this.generation++
    this.failed = false
    this.utf8.reset()
    this.bomChecked = false
    this.skipLF = false
    this.pending = ""
    this.lineNo = 0
    this.clearEvent()
    this.idBuffer = this.lastEventId
  }

  feed(chunk: Uint8Array | string): void {
    if (this.failed) return
    const generation = this.generation
    try {
      let text: string
      if (typeof chunk === "string") {
        // Bytes of a character cut off by a switch from bytes to text can no longer complete.
        const dangling = this.utf8.flush()
        if (this.utf8.invalid) return this.invalidUtf8()
        text = dangling === "" ? chunk : dangling + chunk
      } else {
        text = this.utf8.decode(chunk)
      }
      if (!this.bomChecked && text.length > 0) {
        this.bomChecked = true
        if (text.charCodeAt(0) === BOM) text = text.slice(1)
      }
      if (text.length > 0) this.process(text, generation)
      if (this.utf8.invalid && generation === this.generation) this.invalidUtf8()
    } catch (error) {
      this.failed = true
      this.generation++
      throw error
    }
  }

  end(): void {
    if (this.failed) return
    try {
      const dangling = this.utf8.flush()
      if (this.utf8.invalid) return this.invalidUtf8()
      if (this.strict) {
        const cutLine = this.pending !== "" || dangling !== ""
        if (this.blockStart !== 0) {
          return this.parseError(
            "truncated-event",
            this.blockStart,
            `the stream ended before the blank line that ends the event starting at line ${this.blockStart}`
          )
        }
        if (cutLine) {
          return this.parseError("truncated-event", this.lineNo + 1, "the stream ended inside a line (no line break)")
        }
      }
      this.restart()
    } catch (error) {
      this.failed = true
      this.generation++
      throw error
    }
  }

  private clearEvent(): void {
    this.data = ""
    this.dataLines = 0
    this.dataSize = 0
    this.type = ""
    this.blockStart = 0
  }

  private fail(error: SseParserError): void {
    this.failed = true
    this.generation++
    // Release what was buffered: a failed parser holds no input.
    this.pending = ""
    this.clearEvent()
    this.utf8.reset()
    if (this.onError === undefined) throw error
    this.onError(error)
  }

  private parseError(rule: ParseRule, line: number, detail: string): void {
    this.fail(new SseParseError({ rule, line, detail }))
  }

  private invalidUtf8(): void {
    this.parseError("invalid-utf8", this.lineNo + 1, "bytes that are not valid UTF-8")
  }

  private process(s: string, generation: number): void {
    const len = s.length
    let pos = 0
    if (this.skipLF) {
      this.skipLF = false
      if (s.charCodeAt(0) === LF) pos = 1
    }
    this.scanText = s
    this.scanColon = -2
    // Next LF / CR at or after `pos`; -2 = not searched yet, -1 = none left.
    let lf = -2
    let cr = -2
    while (pos < len) {
      if (lf !== -1 && lf < pos) lf = s.indexOf("\n", pos)
      if (cr !== -1 && cr < pos) cr = s.indexOf("\r", pos)
      let end: number
      let next: number
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        if (lf === -1) break
        end = lf
        next = lf + 1
      } else {
        end = cr
        if (cr + 1 < len) {
          next = s.charCodeAt(cr + 1) === LF ? cr + 2 : cr + 1
        } else {
          next = len
          this.skipLF = true
        }
      }
      if (this.pending !== "") {
        if (this.pending.length + (end - pos) > this.maxLine) return this.lineTooLong()
        const line = this.pending + s.slice(pos, end)
        this.pending = ""
        this.line(line, 0, line.length)
      } else {
        if (end - pos > this.maxLine) return this.lineTooLong()
        this.line(s, pos, end)
      }
      if (this.generation !== generation) return
      pos = next
    }
    this.scanText = ""
    if (pos < len) {
      if (this.pending.length + (len - pos) > this.maxLine) return this.lineTooLong()
      const rest = pos === 0 ? s : s.slice(pos)
      this.pending = this.pending === "" ? rest : this.pending + rest
    }
  }

  // The first colon in `s[start, end)`, or -1. Within the chunk being processed the next colon is
  // cached, so lines without one do not each rescan the rest of the chunk.
  private colonIn(s: string, start: number, end: number): number {
    let colon: number
    if (s === this.scanText) {
      if (this.scanColon !== -1 && this.scanColon < start) this.scanColon = s.indexOf(":", start)
      colon = this.scanColon
    } else {
      colon = s.indexOf(":", start)
    }
    return colon !== -1 && colon < end ? colon : -1
  }

  private lineTooLong(): void {
    this.fail(new SseLimitError({ limit: "line", max: this.maxLine, line: this.lineNo + 1 }))
  }

  // One complete line, `s[start, end)`.
  private line(s: string, start: number, end: number): void {
    this.lineNo++
    if (start === end) return this.dispatch()
    const first = s.charCodeAt(start)
    if (first === COLON) {
      if (this.onComment !== undefined) {
        const from = start + 1 < end && s.charCodeAt(start + 1) === SPACE ? start + 2 : start + 1
        this.onComment(s.slice(from, end))
      }
      return
    }
    if (this.blockStart === 0) this.blockStart = this.lineNo
    // Fast path: a known name directly followed by its colon (the character at `end` is a line
    // break or past the string, so a colon found this way is inside the line).
    let field: number
    let colon: number
    if (first === 100 && s.charCodeAt(start + 4) === COLON && s.startsWith("data", start)) {
      field = DATA
      colon = start + 4
    } else if (first === 105 && s.charCodeAt(start + 1) === 100 && s.charCodeAt(start + 2) === COLON) {
      field = ID
      colon = start + 2
    } else if (first === 101 && s.charCodeAt(start + 5) === COLON && s.startsWith("event", start)) {
      field = EVENT
      colon = start + 5
    } else if (first === 114 && s.charCodeAt(start + 5) === COLON && s.startsWith("retry", start)) {
      field = RETRY
      colon = start + 5
    } else {
      colon = this.colonIn(s, start, end)
      const nameLength = (colon === -1 ? end : colon) - start
      field = nameLength === 4 && s.startsWith("data", start)
        ? DATA
        : nameLength === 2 && s.startsWith("id", start)
        ? ID
        : nameLength === 5 && s.startsWith("event", start)
        ? EVENT
        : nameLength === 5 && s.startsWith("retry", start)
        ? RETRY
        : OTHER
    }
    const valueStart = colon === -1
      ? end
      : colon + 1 < end && s.charCodeAt(colon + 1) === SPACE
      ? colon + 2
      : colon + 1
    switch (field) {
      case DATA: {
        const value = s.slice(valueStart, end)
        if (this.dataLines === 0) {
          this.data = value
          this.dataSize = value.length
        } else {
          this.data = this.data + "\n" + value
          this.dataSize += value.length + 1
        }
        this.dataLines++
        if (this.dataSize + this.type.length > this.maxEvent) this.eventTooLarge()
        return
      }
      case ID: {
        const value = s.slice(valueStart, end)
        if (value.indexOf("\0") === -1) this.idBuffer = value
        else if (this.strict) this.parseError("nul-in-id", this.lineNo, "the id contains U+0000 NULL")
        return
      }
      case EVENT: {
        this.type = s.slice(valueStart, end)
        if (this.dataSize + this.type.length > this.maxEvent) this.eventTooLarge()
        return
      }
      case RETRY: {
        if (isDigits(s, valueStart, end)) {
          if (this.onRetry !== undefined) {
            this.onRetry(Math.min(Number(s.slice(valueStart, end)), Number.MAX_SAFE_INTEGER))
          }
        } else if (this.strict) {
          this.parseError(
            "invalid-retry",
            this.lineNo,
            `retry must be ASCII digits only (got ${
              JSON.stringify(s.slice(valueStart, Math.min(end, valueStart + 32)))
            })`
          )
        }
        return
      }
      default: {
        if (this.strict) {
          const name = s.slice(start, Math.min(colon === -1 ? end : colon, start + 32))
          this.parseError("unknown-field", this.lineNo, `unknown field ${JSON.stringify(name)}`)
        }
      }
    }
  }

  private eventTooLarge(): void {
    this.fail(new SseLimitError({ limit: "event", max: this.maxEvent, line: this.lineNo }))
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer
    if (this.dataLines === 0) {
      this.type = ""
      this.blockStart = 0
      return
    }
    const data = this.data
    const type = this.type
    const id = this.idBuffer
    this.clearEvent()
    // Four literal shapes rather than conditional spreads: no intermediate objects.
    this.onEvent(
      type === ""
        ? (id === "" ? { _tag: "Event", data } : { _tag: "Event", id, data })
        : (id === "" ? { _tag: "Event", event: type, data } : { _tag: "Event", event: type, id, data })
    )
  }
}

/** @internal */
export const makeParser = (options: ParserOptions): Parser => {
  const engine = new Engine(options)
  return {
    feed: (chunk) => engine.feed(chunk),
    end: () => engine.end(),
    reset: () => engine.reset(),
    get lastEventId() {
      return engine.lastEventId
    }
  }
}
