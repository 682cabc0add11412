/**
 * The Redis test kit: a real `redis-server` per test, with real faults.
 *
 * - `RedisServer`: a server on 127.0.0.1 and a free port, no persistence,
 *   stopped with the scope; `pause`/`resume` (SIGSTOP/SIGCONT), `kill`,
 *   `restart` (empty, same port).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as RedisServer from "./testing/RedisServer.ts"
