// `pnpm test:e2e`: the browser tests, apart from `pnpm test` because they need
// Chromium from the system's packages (installed with apt-get when missing).
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: { conditions: ["@sluice/source"] },
  ssr: { resolve: { conditions: ["@sluice/source"] } },
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["tests/e2e/**/*.e2e.ts"],
    globalSetup: ["./tests/setup/chromium.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
