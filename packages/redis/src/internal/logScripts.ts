/**
 * The topic log's server-side scripts. Each runs atomically in Redis, so one
 * topic has one order across every node and publisher.
 *
 * - `append`: a burst of events in one call: next sequence numbers, one
 *   `XADD` each with `<seq>-0` as the entry id, trimming to the history
 *   bounds (count, bytes, age), one `PUBLISH` of the whole burst to the nodes.
 * - `read`: the topic's epoch and last sequence number, and the entries after
 *   a position (replay, gap filling, position checks).
 *
 * Both open the topic first: a topic without meta, or whose stream is gone
 * (restart without persistence, eviction, `FLUSHALL`), gets a fresh epoch, so
 * an id from before the loss can never be mistaken for one after it.
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"
import type { TopicKeys } from "./keys.ts"

// Opens the topic: its epoch, last sequence number and retained bytes. The
// empty stream is created with a placeholder entry at 0-1 (deleted at once):
// a stream keeps its last id, so later ids <seq>-0 (seq >= 1) are accepted.
const open = `
local function open(meta, log, candidate)
  local m = redis.call('HMGET', meta, 'e', 's', 'b')
  if m[1] and redis.call('EXISTS', log) == 1 then
    return m[1], tonumber(m[2]), tonumber(m[3])
  end
  redis.call('DEL', log)
  redis.call('XADD', log, '0-1', 'x', '')
  redis.call('XDEL', log, '0-1')
  redis.call('HSET', meta, 'e', candidate, 's', 0, 'b', 0)
  return candidate, 0, 0
end
`

// Wire bytes of an entry: its fields and its id line, "id: " + id + "\\n",
// where the id is the publisher's ("=" + id as stored) or <epoch>-<seq>.
const size = `
local function size(epoch, seq, body, cid)
  if cid and cid ~= '' then return #body + #cid + 4 end
  return #body + #epoch + #tostring(seq) + 6
end
`

// Evicts from the oldest end while any bound is exceeded; returns the bytes
// still retained. Each entry is read once when it leaves, so a burst costs
// what it adds.
const trim = `
local function trim(log, epoch, bytes, maxEvents, maxBytes, cutoff)
  local len = redis.call('XLEN', log)
  local last = nil
  local from = '-'
  while len > 0 do
    local want = len - maxEvents
    if want < 8 then want = 8 end
    if want > 512 then want = 512 end
    local batch = redis.call('XRANGE', log, from, '+', 'COUNT', want)
    local stop = (#batch == 0)
    for _, e in ipairs(batch) do
      local f = e[2]
      if len <= maxEvents and bytes <= maxBytes and tonumber(f[4]) > cutoff then
        stop = true
        break
      end
      local seq = tonumber(string.match(e[1], '^(%d+)'))
      len = len - 1
      bytes = bytes - size(epoch, seq, f[2], f[6])
      last = seq
      from = '(' .. e[1]
    end
    if stop then break end
  end
  if last then redis.call('XTRIM', log, 'MINID', last .. '-1') end
  if bytes < 0 then bytes = 0 end
  return bytes
end
`

const cutoffOf = `
local function cutoffOf(now, maxAge)
  if maxAge < 0 then return -1 end
  return now - maxAge
end
local function refresh(meta, log, ttl)
  if ttl > 0 then
    redis.call('PEXPIRE', meta, ttl)
    redis.call('PEXPIRE', log, ttl)
  end
end
`

/** Bounds applied by every script that touches a topic. @internal */
export interface Bounds {
  readonly maxEvents: number
  readonly maxBytes: number
  /** `-1` for none. */
  readonly maxAgeMillis: number
  /** Expiry of an idle topic's keys; `0` for none. */
  readonly ttlMillis: number
}

/** One event of a burst: the publisher's own id, if any, and its fields (SSE text without the id line). @internal */
export interface AppendEvent {
  readonly id: string | undefined
  readonly fields: string
}

/**
 * How a publisher's id travels and is stored: `"=" + id` (so that an empty
 * id is not "no id"); `""` for none.
 *
 * @internal
 */
export const encodeCallerId = (id: string | undefined): string => id === undefined ? "" : `=${id}`

/** @internal */
export const decodeCallerId = (stored: string | undefined): string | undefined =>
  stored === undefined || stored === "" ? undefined : stored.slice(1)

/** `[epoch, firstSeq]` of the burst. @internal */
export type AppendResult = readonly [epoch: string, first: number]

/**
 * Appends a burst. The message published to the nodes is JSON:
 * `{"t": topic, "e": epoch, "s": firstSeq, "f": [fields…], "c": [publisher id…]}` (`c` only when
 * some event has its publisher's id; each as {@link encodeCallerId} stores it). `fields` is the event's SSE text
 * without its id line.
 *
 * @internal
 */
export const append = Redis.script(
  (
    keys: TopicKeys,
    channel: string,
    topic: string,
    candidateEpoch: string,
    now: number,
    bounds: Bounds,
    events: ReadonlyArray<AppendEvent>
  ) => {
    const params: Array<string | number> = [
      keys.meta,
      keys.log,
      channel,
      topic,
      candidateEpoch,
      now,
      bounds.maxEvents,
      Number.isFinite(bounds.maxBytes) ? bounds.maxBytes : -1,
      bounds.maxAgeMillis,
      bounds.ttlMillis,
      events.length
    ]
    for (const e of events) params.push(encodeCallerId(e.id), e.fields)
    return params
  },
  {
    numberOfKeys: 2,
    lua: `${open}${size}${trim}${cutoffOf}
local meta, log = KEYS[1], KEYS[2]
local now = tonumber(ARGV[4])
local maxEvents = tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[6])
if maxBytes < 0 then maxBytes = math.huge end
local ttl = tonumber(ARGV[8])
local n = tonumber(ARGV[9])
local epoch, seq, bytes = open(meta, log, ARGV[3])
local first = seq + 1
local frames, callers, own = {}, {}, false
for i = 1, n do
  seq = seq + 1
  local cid, body = ARGV[8 + 2 * i], ARGV[9 + 2 * i]
  callers[i] = cid
  if cid ~= '' then
    redis.call('XADD', log, seq .. '-0', 'f', body, 't', now, 'c', cid)
    own = true
  else
    redis.call('XADD', log, seq .. '-0', 'f', body, 't', now)
  end
  bytes = bytes + size(epoch, seq, body, cid)
  frames[i] = body
end
bytes = trim(log, epoch, bytes, maxEvents, maxBytes, cutoffOf(now, tonumber(ARGV[7])))
redis.call('HSET', meta, 's', seq, 'b', bytes)
refresh(meta, log, ttl)
local message = { t = ARGV[2], e = epoch, s = first, f = frames }
if own then message.c = callers end
redis.call('PUBLISH', ARGV[1], cjson.encode(message))
return { epoch, first }
`
  }
).withReturnType<AppendResult>()

/**
 * `[epoch, lastSeq, firstRetainedSeq, ...entries]`, each entry three values:
 * seq, the publisher's id (as {@link encodeCallerId} stores it), fields (SSE text without the id line).
 *
 * @internal
 */
export type ReadResult = ReadonlyArray<string | number>

/**
 * Reads the topic: its epoch, last sequence number, first retained sequence
 * number (`lastSeq + 1` when nothing is retained), and up to `count` entries
 * with `after < seq <= until` (`until` 0: no upper bound; `after` below 0: the
 * newest `count` entries, oldest first). Trims what the
 * bounds no longer allow first, so nothing expired is returned.
 *
 * @internal
 */
export const read = Redis.script(
  (
    keys: TopicKeys,
    candidateEpoch: string,
    now: number,
    bounds: Bounds,
    after: number,
    until: number,
    count: number
  ) => [
    keys.meta,
    keys.log,
    candidateEpoch,
    now,
    bounds.maxEvents,
    Number.isFinite(bounds.maxBytes) ? bounds.maxBytes : -1,
    bounds.maxAgeMillis,
    bounds.ttlMillis,
    after,
    until,
    count
  ],
  {
    numberOfKeys: 2,
    lua: `${open}${size}${trim}${cutoffOf}
local meta, log = KEYS[1], KEYS[2]
local now = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[4])
if maxBytes < 0 then maxBytes = math.huge end
local epoch, seq, bytes = open(meta, log, ARGV[1])
local kept = trim(log, epoch, bytes, tonumber(ARGV[3]), maxBytes, cutoffOf(now, tonumber(ARGV[5])))
if kept ~= bytes then redis.call('HSET', meta, 'b', kept) end
refresh(meta, log, tonumber(ARGV[6]))
local out = { epoch, seq, seq + 1 }
local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
if #oldest > 0 then out[3] = tonumber(string.match(oldest[1][1], '^(%d+)')) end
local after, upto, count = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local entries = {}
if count > 0 and after < 0 then
  local newest = redis.call('XREVRANGE', log, '+', '-', 'COUNT', count)
  for i = #newest, 1, -1 do entries[#entries + 1] = newest[i] end
elseif count > 0 and after < seq then
  local stop = '+'
  if upto > 0 then stop = upto .. '-0' end
  entries = redis.call('XRANGE', log, '(' .. after .. '-0', stop, 'COUNT', count)
end
do
  for _, e in ipairs(entries) do
    local f = e[2]
    out[#out + 1] = tonumber(string.match(e[1], '^(%d+)'))
    out[#out + 1] = f[6] or ''
    out[#out + 1] = f[2]
  end
end
return out
`
  }
).withReturnType<ReadResult>()

/**
 * The sequence number of the newest retained entry that carried the
 * publisher's id `callerId`, or `false`. Scans the retained history from the
 * newest end, at most `limit` entries (publisher ids are not indexed: the hub's
 * own ids are found without a scan).
 *
 * @internal
 */
export const findCallerId = Redis.script(
  (keys: TopicKeys, callerId: string, limit: number) => [keys.log, encodeCallerId(callerId), limit],
  {
    numberOfKeys: 1,
    lua: `
local log, cid, limit = KEYS[1], ARGV[1], tonumber(ARGV[2])
local from = '+'
local seen = 0
while seen < limit do
  local batch = redis.call('XREVRANGE', log, from, '-', 'COUNT', 256)
  if #batch == 0 then return false end
  for _, e in ipairs(batch) do
    seen = seen + 1
    if e[2][6] == cid then return tonumber(string.match(e[1], '^(%d+)')) end
    from = '(' .. e[1]
  end
end
return false
`
  }
).withReturnType<number | null>()
