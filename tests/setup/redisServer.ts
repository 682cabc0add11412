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
import { execFileSync } from "node:child_process"

const { binary } = RedisServer

const run = (command: string, args: ReadonlyArray<string>) => {
  const asRoot = process.getuid?.() === 0
  const [file, argv] = asRoot ? [command, args] : ["sudo", ["-n", command, ...args]]
  execFileSync(file, argv, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 600_000
  })
}

export default function setup(): void {
  if (binary() !== undefined) return
  console.log("redis-server is missing: installing the Debian package redis-server with apt-get")
  try {
    run("apt-get", ["update"])
    run("apt-get", ["install", "-y", "--no-install-recommends", "redis-server"])
  } catch (cause) {
    throw new Error(
      `redis-server is not installed and apt-get could not install it (${String(cause)}). ` +
        "Install the Debian package redis-server, or set REDIS_SERVER to a redis-server binary.",
      { cause: cause }
    )
  }
  if (binary() === undefined) throw new Error("apt-get installed redis-server, but no redis-server binary was found")
}
