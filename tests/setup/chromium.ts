/**
 * Vitest global setup of `pnpm test:e2e`: makes sure Chromium is installed
 * before the browser tests run, so that the README's command works on a
 * fresh Debian machine (as `.ci/run` does). With `CHROMIUM_PATH` set, that
 * binary is used and nothing is installed. A Chromium that cannot be had
 * fails the run with the reason; the browser tests are never skipped.
 */
import { existsSync } from "node:fs"
import { aptInstall } from "./apt.ts"

const path = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

export default function setup(): void {
  if (existsSync(path)) return
  if (process.env["CHROMIUM_PATH"] !== undefined) throw new Error(`CHROMIUM_PATH names ${path}, which does not exist`)
  aptInstall("chromium", "Install the Debian package chromium, or set CHROMIUM_PATH to a Chromium binary.", {
    recommends: true
  })
  if (!existsSync(path)) throw new Error(`apt-get installed chromium, but ${path} does not exist`)
}
