// `pnpm test:e2e`: the browser tests, apart from `pnpm test` because they need
// Chromium from the system's packages (`apt-get install chromium`).
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: { conditions: ["@sluice/source"] },
  ssr: { resolve: { conditions: ["@sluice/source"] } },
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["tests/e2e/**/*.e2e.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000
  }
})
