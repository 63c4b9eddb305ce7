import { defineConfig } from "vitest/config";

/**
 * The chaos suite (npm run test:chaos, full; npm run test:chaos:ci, bounded): its own processes, PostgreSQL
 * and Redis, one scenario after another. docs/reliability.md.
 */
const ci = process.env.CHAOS_PROFILE === "ci";

export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: ci ? 9 * 60_000 : 6 * 3_600_000,
    hookTimeout: 120_000,
    reporters: ["default", ["json", { outputFile: "test-results/vitest-chaos.json" }]],
  },
});
