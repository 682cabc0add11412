/**
 * Installs a Debian package with apt-get (through `sudo -n` when not root),
 * for the global setups that make the README's test commands work on a
 * fresh machine. A failure is thrown with the reason and what to do instead:
 * tests that need the package are never skipped.
 */
import { execFileSync } from "node:child_process"

const run = (command: string, args: ReadonlyArray<string>) => {
  const asRoot = process.getuid?.() === 0
  const [file, argv] = asRoot ? [command, args] : ["sudo", ["-n", command, ...args]]
  execFileSync(file, argv, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 600_000
  })
}

/** Installs `pkg`; `instead` says what a user can do when apt-get cannot. */
export const aptInstall = (pkg: string, instead: string, options: { readonly recommends?: boolean } = {}): void => {
  console.log(`${pkg} is missing: installing the Debian package ${pkg} with apt-get`)
  try {
    run("apt-get", ["update"])
    run("apt-get", ["install", "-y", ...(options.recommends === true ? [] : ["--no-install-recommends"]), pkg])
  } catch (cause) {
    throw new Error(`${pkg} is not installed and apt-get could not install it (${String(cause)}). ${instead}`, {
      cause
    })
  }
}
