import { defineConfig } from "vitest/config";

/** The panel's browser suite (npm run test:browser): playwright-core driving Debian's chromium. */
export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    testTimeout: 240_000,
    hookTimeout: 120_000,
    reporters: process.env.CI
      ? ["default", ["json", { outputFile: "test-results/vitest-browser.json" }]]
      : ["default"],
  },
});
