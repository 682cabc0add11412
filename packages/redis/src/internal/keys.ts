/**
 * Names of everything sluice keeps in Redis, in one place.
 *
 * ```text
 * <prefix>:t:{<topic>}:m   hash    topic meta: e (epoch), s (last seq), b (retained bytes)
 * <prefix>:t:{<topic>}:s   stream  the topic's record: entry id <seq>-0, fields f (frame), t (ms), c (caller id)
 * <prefix>:log             channel every topic's new entries, and node pings; one subscription per node
 * <prefix>:k:{<key>}       hash    keyed stream: o (owner node), g (generation), n (last seq), a (acked seq),
 *                                  cr / ce / ca (terminal reason, event, time), tk (the live connection's
 *                                  token, if it has one), lu (its registration's lease, ms)
 * <prefix>:k:{<key>}:q     zset    keyed outbox: events not yet taken by a connection, score = seq
 * <prefix>:tk:<token>      string  the key a connection's token names (ttl: the registry's keep time,
 *                                  renewed with the registration); the key's hash says whether it is live
 * <prefix>:n:<node>        channel one node's keyed traffic (events, replacements, handovers)
 * <prefix>:r:{<id>}        hash    resumable stream's state: st, id, o, rec, sa, lu, ls, sr, dm, rm, tt, b, end, ea
 *                                  (see coordinatorScripts.ts)
 * <prefix>:r               channel resumable streams' stop requests, ends and removals; one subscription per process
 * ```
 *
 * The `{…}` hash tags keep a topic's (or a key's) keys in one Redis Cluster
 * slot, so each script touches one slot.
 *
 * @internal
 */

/** @internal */
export interface TopicKeys {
  readonly meta: string
  readonly log: string
}

/** @internal */
export const topic = (prefix: string, name: string): TopicKeys => ({
  meta: `${prefix}:t:{${name}}:m`,
  log: `${prefix}:t:{${name}}:s`
})

/** @internal */
export const logChannel = (prefix: string): string => `${prefix}:log`

/** @internal */
export interface KeyedKeys {
  readonly state: string
  readonly outbox: string
}

/** @internal */
export const keyed = (prefix: string, key: string): KeyedKeys => ({
  state: `${prefix}:k:{${key}}`,
  outbox: `${prefix}:k:{${key}}:q`
})

/** @internal */
export const token = (prefix: string, name: string): string => `${prefix}:tk:${name}`

/** @internal */
export const nodeChannel = (prefix: string, node: string): string => `${prefix}:n:${node}`

/** @internal */
export const resumable = (prefix: string, id: string): string => `${prefix}:r:{${id}}`

/** @internal */
export const resumableChannel = (prefix: string): string => `${prefix}:r`
