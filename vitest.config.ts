import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: { conditions: ["@sluice/source"] },
  ssr: { resolve: { conditions: ["@sluice/source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "tests/**/*.test.ts"],
    // Installs redis-server with apt-get when it is missing (never skipped).
    globalSetup: ["./tests/setup/redisServer.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
