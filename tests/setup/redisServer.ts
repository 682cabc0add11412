/**
 * Vitest global setup: makes sure `redis-server` is installed before any test
 * runs, so that the README's test command works on a fresh Debian machine.
 *
 * When the binary is missing it installs the Debian package `redis-server`
 * with apt-get (through sudo when not root). If that fails, the run fails
 * with the reason: tests that need Redis are never skipped.
 *
 * Each test starts its own server (`RedisServer.make` from
 * `@sluice/redis/testing`) on a free port and stops it; nothing is started
 * here.
 */
import { RedisServer } from "@sluice/redis/testing"
import { aptInstall } from "./apt.ts"

const { binary } = RedisServer

export default function setup(): void {
  if (binary() !== undefined) return
  aptInstall(
    "redis-server",
    "Install the Debian package redis-server, or set REDIS_SERVER to a redis-server binary."
  )
  if (binary() === undefined) throw new Error("apt-get installed redis-server, but no redis-server binary was found")
}
