/**
 * The resumable coordinator's server-side scripts: each operation on a
 * stream's state is one script on one hash, so its checks and its changes
 * never interleave with another node's, and every time is Redis' own
 * (`TIME`), never a node's clock.
 *
 * A stream's hash (`<prefix>:r:{<id>}`) holds:
 *
 * | field | value |
 * | --- | --- |
 * | `st` | `running` or `ended` |
 * | `id`, `o`, `rec` | the stream's id, the owner node, the record (log name) |
 * | `sa`, `lu`, `ls` | claimed at, lease until, a client last seen at (ms, Redis time) |
 * | `sr` | a stop asked for and not carried out yet: its reason (absent: none) |
 * | `dm`, `rm`, `tt` | detach grace, retention, ttl while running (ms; `dm` empty: no detach policy; `tt` 0: none) |
 * | `b` | the record's bounds, JSON (`maxAgeMillis` null: none) |
 * | `end`, `ea` | once ended: the end (JSON) and when (ms) |
 *
 * The hash expires on its own: `tt` after the claim while running (or, for a
 * stream without a lifetime, a lease plus the retention after the owner's
 * last renewal), the retention after the end. Changes that other nodes must
 * hear of (a stop request, the end, a removal) are published on
 * `<prefix>:r` as `{"i": id, "n": now, "s": [field, value, …]}` (`s`
 * absent: removed).
 *
 * Every script answers `[status, now, field, value, …]` (the hash's fields
 * after the operation; none when it does not exist).
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"

const common = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n)
  return string.format('%.0f', n)
end
local function answer(status, t, h)
  local out = { status, ms(t) }
  for _, v in ipairs(redis.call('HGETALL', h)) do out[#out + 1] = v end
  return out
end
local function notify(channel, id, t, h)
  local message = { i = id, n = ms(t) }
  if redis.call('EXISTS', h) == 1 then message.s = redis.call('HGETALL', h) end
  redis.call('PUBLISH', channel, cjson.encode(message))
end
`

/** `[status, now, ...fields]`: the answer of every script. @internal */
export type Reply = ReadonlyArray<string | number>

/** What a claim stores. @internal */
export interface ClaimArgs {
  readonly id: string
  readonly owner: string
  readonly record: string
  readonly leaseMillis: number
  /** 0: no ttl (a stream without a lifetime). */
  readonly ttlMillis: number
  /** Empty: no detach policy. */
  readonly detachMillis: string
  readonly retentionMillis: number
  /** JSON. */
  readonly bounds: string
}

/** `claimed` or `exists`. @internal */
export const claim = Redis.script(
  (key: string, args: ClaimArgs) => [
    key,
    args.id,
    args.owner,
    args.record,
    args.leaseMillis,
    args.ttlMillis,
    args.detachMillis,
    args.retentionMillis,
    args.bounds
  ],
  {
    numberOfKeys: 1,
    lua: `${common}
local h = KEYS[1]
local id, owner, record, lease, ttl, dm, rm, bounds =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
local t = now()
if redis.call('EXISTS', h) == 1 then return answer('exists', t, h) end
redis.call('HSET', h, 'st', 'running', 'id', id, 'o', owner, 'rec', record, 'sa', ms(t), 'lu', ms(t + lease),
  'ls', ms(t), 'dm', dm, 'rm', ms(rm), 'tt', ms(ttl), 'b', bounds)
if ttl > 0 then redis.call('PEXPIRE', h, ms(ttl)) else redis.call('PEXPIRE', h, ms(lease + rm)) end
return answer('claimed', t, h)
`
  }
).withReturnType<Reply>()

/** `renewed` or `lost`. @internal */
export const renew = Redis.script(
  (key: string, owner: string, leaseMillis: number) => [key, owner, leaseMillis],
  {
    numberOfKeys: 1,
    lua: `${common}
local h = KEYS[1]
local owner, lease = ARGV[1], tonumber(ARGV[2])
local t = now()
local s = redis.call('HMGET', h, 'st', 'o', 'lu', 'tt', 'rm')
-- A lease that ran out is lost: another node may have declared the producer lost on the strength of it.
if s[1] ~= 'running' or s[2] ~= owner or t >= tonumber(s[3]) then return answer('lost', t, h) end
redis.call('HSET', h, 'lu', ms(t + lease))
if tonumber(s[4]) == 0 then redis.call('PEXPIRE', h, ms(lease + tonumber(s[5]))) end
return answer('renewed', t, h)
`
  }
).withReturnType<Reply>()

/** `ok` (always). @internal */
export const touch = Redis.script(
  (key: string) => [key],
  {
    numberOfKeys: 1,
    lua: `${common}
local h = KEYS[1]
local t = now()
if redis.call('HGET', h, 'st') == 'running' then redis.call('HSET', h, 'ls', ms(t)) end
return { 'ok', ms(t) }
`
  }
).withReturnType<Reply>()

/** `asked` (this call asked), `ok` (asked before, or ended), `none` (unknown). @internal */
export const requestStop = Redis.script(
  (key: string, channel: string, id: string, reason: string) => [key, channel, id, reason],
  {
    numberOfKeys: 1,
    lua: `${common}
local h = KEYS[1]
local channel, id, reason = ARGV[1], ARGV[2], ARGV[3]
local t = now()
local s = redis.call('HMGET', h, 'st', 'sr')
if not s[1] then return { 'none', ms(t) } end
if s[1] == 'running' and not s[2] then
  redis.call('HSET', h, 'sr', reason)
  notify(channel, id, t, h)
  return answer('asked', t, h)
end
return answer('ok', t, h)
`
  }
).withReturnType<Reply>()

/** What a finish asks for. @internal */
export interface FinishArgs {
  /** JSON of the end. */
  readonly end: string
  readonly retentionMillis: number
  /** Empty: a declaration by another node (allowed once the lease has run out). */
  readonly owner: string
}

/** `finished` or `refused`. @internal */
export const finish = Redis.script(
  (key: string, channel: string, id: string, args: FinishArgs) => [
    key,
    channel,
    id,
    args.end,
    args.retentionMillis,
    args.owner
  ],
  {
    numberOfKeys: 1,
    lua: `${common}
local h = KEYS[1]
local channel, id, ending, rm, owner = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local t = now()
local s = redis.call('HMGET', h, 'st', 'o', 'lu')
if s[1] ~= 'running' then return answer('refused', t, h) end
local allowed
if owner == '' then allowed = t >= tonumber(s[3]) else allowed = (s[2] == owner) end
if not allowed then return answer('refused', t, h) end
redis.call('HSET', h, 'st', 'ended', 'end', ending, 'ea', ms(t))
local out = answer('finished', t, h)
notify(channel, id, t, h)
-- PEXPIRE with 0 deletes the key at once: a retention of 0 forgets the end now.
if rm > 0 then redis.call('PEXPIRE', h, ms(rm)) else redis.call('DEL', h) end
return out
`
  }
).withReturnType<Reply>()

/** `ok`, with the fields (none: unknown). @internal */
export const get = Redis.script(
  (key: string) => [key],
  {
    numberOfKeys: 1,
    lua: `${common}
return answer('ok', now(), KEYS[1])
`
  }
).withReturnType<Reply>()

/** `removed` or `kept` (a newer start of the id, or nothing). @internal */
export const remove = Redis.script(
  (key: string, channel: string, id: string, record: string) => [key, channel, id, record],
  {
    numberOfKeys: 1,
    lua: `${common}
local h = KEYS[1]
local channel, id, record = ARGV[1], ARGV[2], ARGV[3]
local t = now()
if redis.call('HGET', h, 'rec') ~= record then return { 'kept', ms(t) } end
redis.call('DEL', h)
notify(channel, id, t, h)
return { 'removed', ms(t) }
`
  }
).withReturnType<Reply>()
