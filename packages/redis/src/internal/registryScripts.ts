/**
 * The keyed registry's server-side scripts: ownership with generations, the
 * outbox, acknowledgements and terminal sends, each one atomic.
 *
 * A key's hash holds `o` (owner node), `g` (generation of its connection),
 * `n` (last event number), `a` (events up to `a` were taken by a connection),
 * and, once a terminal event was sent, `cr` / `ce` / `ca` (its reason,
 * frame and time). Its outbox (a sorted set, score = event number) holds
 * every event no connection has taken yet, including those on their way to
 * the owner: an event leaves it only when a connection took it (`ack`), when
 * the outbox overflows, or when it expires. So a node that dies with events in
 * flight loses none of them: the next connection for the key gets them.
 *
 * Generations grow forever (`max(g + 1, TIME in µs)`, so also across a lost
 * hash): every identity check compares them, and a stale connection's
 * cleanup can never touch its successor's registration.
 *
 * A connection may carry a token (an opaque name the application addresses
 * it by): `tk` holds the live connection's token, and `lu` (ms, Redis time)
 * the end of its registration's lease, moved by every renewal. A send or a
 * disconnect addressed by token goes through only while `tk` is that token,
 * the registration is held (`o`), its lease runs, and no terminal event was
 * sent; otherwise it answers `gone` and touches nothing. So a token names
 * one connection: replaced, ended, closed, or on a node that died (its lease
 * ran out), it is gone.
 *
 * Messages to a node's channel are JSON (generations as strings of digits):
 * `{"x":"e","k":key,"g":gen,"s":seq,"f":frame,"t":reason?}`
 * (an event), `{"x":"r","k","g":old,"by":new}` (replaced), `{"x":"h","k","g":new}`
 * (the previous owner handed over), `{"x":"d","k","g","r":reason}` (disconnect).
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"
import type { KeyedKeys } from "./keys.ts"

// Outbox members: "<seq>|<at>|<terminal reason as JSON, or null>\n<frame>".
const common = `
local function member(seq, at, terminal, frame)
  local reason = 'null'
  if terminal then reason = cjson.encode(terminal) end
  return seq .. '|' .. at .. '|' .. reason .. '\\n' .. frame
end
local function at(m)
  local _, t = string.match(m, '^(%d+)|(%d+)|')
  return tonumber(t)
end
-- Drops what outlived the ttl (oldest first); returns how many.
local function expire(q, now, ttl)
  if ttl <= 0 then return 0 end
  local dropped = 0
  while true do
    local head = redis.call('ZRANGE', q, 0, 15)
    if #head == 0 then return dropped end
    for _, m in ipairs(head) do
      if now - at(m) < ttl then return dropped end
      redis.call('ZREM', q, m)
      dropped = dropped + 1
    end
  end
end
local function keep(h, q, ms)
  if ms > 0 then
    redis.call('PEXPIRE', h, ms)
    if redis.call('EXISTS', q) == 1 then redis.call('PEXPIRE', q, ms) end
  end
end
local function millis()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Whether the registration of the connection named by token is live.
local function holds(h, token)
  local s = redis.call('HMGET', h, 'tk', 'o', 'lu', 'cr')
  return s[1] == token and s[2] and s[4] == false and tonumber(s[3] or '0') > millis()
end
-- As a string of digits: cjson and tostring would print it in exponent notation.
local function generation(h)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local g = tonumber(redis.call('HGET', h, 'g') or '0')
  if g >= now then now = g + 1 end
  return string.format('%.0f', now)
end
`

/** @internal */
export interface Limits {
  /** Events the outbox holds. */
  readonly capacity: number
  /** Milliseconds an event waits at most; `0` for no limit. */
  readonly ttlMillis: number
  readonly overflow: "sliding" | "dropping" | "fail"
  /** Milliseconds the key's keys live after the last activity (at least the ttl). */
  readonly keepMillis: number
  /** Milliseconds a registration (and its token) stays valid after its node's last renewal. */
  readonly leaseMillis: number
}

/**
 * `[status, seq | reason, droppedOverflow, droppedExpired]` where status is
 * `delivered` (handed to the owner's node), `pending` (waiting in the outbox),
 * `dropped` (refused by a full outbox under dropping), `full` (under
 * fail), `closed` (the second value is the terminal reason), `gone` (sent
 * by token: it names no live connection).
 *
 * @internal
 */
export type SendReply = readonly [status: string, detail: number | string, overflow: number, expired: number]

/** @internal */
export const send = Redis.script(
  (
    keys: KeyedKeys,
    prefix: string,
    key: string,
    frame: string,
    terminal: string | undefined,
    now: number,
    limits: Limits,
    token: string | undefined
  ) => [
    keys.state,
    keys.outbox,
    prefix,
    key,
    frame,
    terminal ?? "",
    terminal === undefined ? "0" : "1",
    now,
    limits.capacity,
    limits.ttlMillis,
    limits.overflow,
    limits.keepMillis,
    token ?? ""
  ],
  {
    numberOfKeys: 2,
    lua: `${common}
local h, q = KEYS[1], KEYS[2]
local prefix, key, frame, terminal, isTerminal = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == '1'
local now, capacity, ttl, overflow, keepMs = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local token = ARGV[11]
if token ~= '' and not holds(h, token) then return { 'gone', 0, 0, 0 } end
local closed = redis.call('HGET', h, 'cr')
if closed then return { 'closed', closed, 0, 0 } end
local expired = expire(q, now, ttl)
local overflowed = 0
if redis.call('ZCARD', q) >= capacity then
  if not isTerminal and overflow == 'fail' then return { 'full', capacity, 0, expired } end
  if not isTerminal and overflow == 'dropping' then return { 'dropped', 0, 1, expired } end
  while redis.call('ZCARD', q) >= capacity do
    redis.call('ZPOPMIN', q, 1)
    overflowed = overflowed + 1
  end
end
local seq = redis.call('HINCRBY', h, 'n', 1)
redis.call('ZADD', q, seq, member(seq, now, isTerminal and terminal or nil, frame))
if isTerminal then redis.call('HSET', h, 'cr', terminal, 'ce', frame, 'ca', now) end
local owner = redis.call('HMGET', h, 'o', 'g')
local status = 'pending'
if owner[1] then
  local message = { x = 'e', k = key, g = owner[2], s = seq, f = frame }
  if isTerminal then message.t = terminal end
  if redis.call('PUBLISH', prefix .. ':n:' .. owner[1], cjson.encode(message)) > 0 then status = 'delivered' end
end
keep(h, q, keepMs)
return { status, seq, overflowed, expired }
`
  }
).withReturnType<SendReply>()

/**
 * `[generation, listeners of the previous owner's node, acked, expired,
 * closedReason | false, closedFrame | false, ...outbox members after acked]`.
 * Outbox members are returned only when no previous owner is listening (it
 * hands over first: see `handover`).
 *
 * @internal
 */
export type ClaimReply = ReadonlyArray<string | number | null>

/** Takes the key for a new connection on `node`, telling the previous owner it was replaced. @internal */
export const claim = Redis.script(
  (
    keys: KeyedKeys,
    prefix: string,
    key: string,
    node: string,
    now: number,
    limits: Limits,
    token: string | undefined
  ) => [
    keys.state,
    keys.outbox,
    prefix,
    key,
    node,
    now,
    limits.ttlMillis,
    limits.keepMillis,
    token ?? "",
    limits.leaseMillis
  ],
  {
    numberOfKeys: 2,
    lua: `${common}
local h, q = KEYS[1], KEYS[2]
local prefix, key, node, now, ttl, keepMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local token, leaseMs = ARGV[7], tonumber(ARGV[8])
local old = redis.call('HMGET', h, 'o', 'g')
local g = generation(h)
redis.call('HSET', h, 'o', node, 'g', g, 'lu', string.format('%.0f', millis() + leaseMs))
if token ~= '' then redis.call('HSET', h, 'tk', token) else redis.call('HDEL', h, 'tk') end
local expired = expire(q, now, ttl)
local listening = 0
if old[1] then
  listening = redis.call('PUBLISH', prefix .. ':n:' .. old[1], cjson.encode({ x = 'r', k = key, g = old[2], by = g }))
end
local state = redis.call('HMGET', h, 'a', 'cr', 'ce')
local out = { g, listening, tonumber(state[1] or '0'), expired, state[2], state[3] }
if listening == 0 then
  for _, m in ipairs(redis.call('ZRANGE', q, 0, -1)) do out[#out + 1] = m end
end
keep(h, q, keepMs)
return out
`
  }
).withReturnType<ClaimReply>()

/**
 * The outbox after `after` for the connection of generation `g`:
 * `[status, acked, ...members]`, status `ok`, or `stale` (another
 * connection owns the key now; no members).
 *
 * @internal
 */
export const pull = Redis.script(
  (keys: KeyedKeys, generation: number, after: number, now: number, limits: Limits) => [
    keys.state,
    keys.outbox,
    generation,
    after,
    now,
    limits.ttlMillis
  ],
  {
    numberOfKeys: 2,
    lua: `${common}
local h, q = KEYS[1], KEYS[2]
local g, after, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('HGET', h, 'g') ~= g then return { 'stale', 0 } end
expire(q, now, ttl)
local out = { 'ok', tonumber(redis.call('HGET', h, 'a') or '0') }
for _, m in ipairs(redis.call('ZRANGEBYSCORE', q, '(' .. after, '+inf')) do out[#out + 1] = m end
return out
`
  }
).withReturnType<ReadonlyArray<string | number>>()

/**
 * A connection took every event up to `seq`: they leave the outbox. Also
 * from a connection that was replaced meanwhile (what it took, it took).
 * With `release`, the key's registration is removed if it is still this
 * generation's. With `handover`, the current owner's node is told the
 * previous connection is done. Returns `1` when the registration was this
 * generation's.
 *
 * @internal
 */
export const ack = Redis.script(
  (
    keys: KeyedKeys,
    prefix: string,
    key: string,
    generation: number,
    seq: number,
    mode: "ack" | "release" | "handover",
    keepMillis: number
  ) => [keys.state, keys.outbox, prefix, key, generation, seq, mode, keepMillis],
  {
    numberOfKeys: 2,
    lua: `${common}
local h, q = KEYS[1], KEYS[2]
local prefix, key, g, seq, mode, keepMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
if seq > 0 then
  redis.call('ZREMRANGEBYSCORE', q, '-inf', seq)
  if seq > tonumber(redis.call('HGET', h, 'a') or '0') then redis.call('HSET', h, 'a', seq) end
end
local state = redis.call('HMGET', h, 'o', 'g')
local own = (state[2] == g)
if mode == 'release' and own then redis.call('HDEL', h, 'o') end
if mode == 'handover' and state[1] and not own then
  redis.call('PUBLISH', prefix .. ':n:' .. state[1], cjson.encode({ x = 'h', k = key, g = state[2] }))
end
if redis.call('EXISTS', h) == 1 then keep(h, q, keepMs) end
if own then return 1 end
return 0
`
  }
).withReturnType<number>()

/**
 * The owner's periodic renewal: `[status, last, acked]`, status `ok` (still
 * the owner: the keys' lifetime is extended), `replaced` (another generation
 * owns the key), or `adopted` (the key's state was lost, Redis restarted
 * empty: this connection owns it again and numbering starts over from
 * `acked`).
 *
 * @internal
 */
export const renew = Redis.script(
  (keys: KeyedKeys, node: string, generation: number, limits: Limits, token: string | undefined) => [
    keys.state,
    keys.outbox,
    node,
    generation,
    limits.keepMillis,
    token ?? "",
    limits.leaseMillis
  ],
  {
    numberOfKeys: 2,
    lua: `${common}
local h, q = KEYS[1], KEYS[2]
local node, g, keepMs, token, leaseMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local state = redis.call('HMGET', h, 'o', 'g', 'n', 'a')
local status = 'ok'
if not state[2] then
  redis.call('HSET', h, 'o', node, 'g', g)
  if token ~= '' then redis.call('HSET', h, 'tk', token) end
  status = 'adopted'
elseif state[2] ~= g then
  return { 'replaced', 0, 0 }
elseif state[1] ~= node then
  redis.call('HSET', h, 'o', node)
end
redis.call('HSET', h, 'lu', string.format('%.0f', millis() + leaseMs))
keep(h, q, keepMs)
return { status, tonumber(state[3] or '0'), tonumber(state[4] or '0') }
`
  }
).withReturnType<readonly [string, number, number]>()

/**
 * Ends the key's live connection (wherever it is) and forgets its waiting
 * events: `1` when a node holding it was told; `-1` (addressed by token)
 * when the token names no live connection (nothing is touched).
 *
 * @internal
 */
export const disconnect = Redis.script(
  (keys: KeyedKeys, prefix: string, key: string, reason: string, token: string | undefined) => [
    keys.state,
    keys.outbox,
    prefix,
    key,
    reason,
    token ?? ""
  ],
  {
    numberOfKeys: 2,
    lua: `${common}
local h, q = KEYS[1], KEYS[2]
local prefix, key, reason, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if token ~= '' and not holds(h, token) then return -1 end
local n = tonumber(redis.call('HGET', h, 'n') or '0')
redis.call('DEL', q)
if n > 0 then redis.call('HSET', h, 'a', n) end
local state = redis.call('HMGET', h, 'o', 'g')
if not state[1] then return 0 end
return redis.call('PUBLISH', prefix .. ':n:' .. state[1], cjson.encode({ x = 'd', k = key, g = state[2], r = reason }))
`
  }
).withReturnType<number>()

/** An outbox member, read. @internal */
export interface Waiting {
  readonly seq: number
  readonly at: number
  readonly terminal: string | undefined
  readonly frame: string
}

/** Reads an outbox member (`<seq>|<at>|<terminal reason as JSON, or null>\n<frame>`). @internal */
export const parseMember = (member: string): Waiting => {
  const a = member.indexOf("|")
  const b = member.indexOf("|", a + 1)
  const c = member.indexOf("\n", b + 1)
  const terminal = JSON.parse(member.slice(b + 1, c)) as string | null
  return {
    seq: Number(member.slice(0, a)),
    at: Number(member.slice(a + 1, b)),
    terminal: terminal ?? undefined,
    frame: member.slice(c + 1)
  }
}
