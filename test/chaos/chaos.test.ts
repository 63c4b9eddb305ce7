import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readParams, type Scenario } from "./lib/params.ts";
import { killAllStarted } from "./lib/procs.ts";
import { REPORT_DIR, reproduceCommand, violationsOf, writeReports } from "./lib/report.ts";
import type { ScenarioResult } from "./lib/result.ts";
import { runEmbeddedScenario } from "./lib/scenario-embedded.ts";
import { runPostgresScenario } from "./lib/scenario-postgres.ts";

/**
 * The chaos suite (issue 19): Herald under process kills, a Redis outage, a PostgreSQL crash and a stalled
 * dispatcher keeps its delivery promise — nothing lost, ordered queues in order, duplicates only with the
 * same webhook-id. `npm run test:chaos` (full run), `npm run test:chaos:ci` (bounded); docs/reliability.md.
 */
const params = readParams();
const results: ScenarioResult[] = [];
process.stdout.write(
  `[chaos] profile ${params.profile}, seed ${params.seed}\n[chaos] reproduce: ${reproduceCommand(params)}\n`,
);

const RUNNERS: Record<Scenario, (logDir: string) => Promise<ScenarioResult>> = {
  postgres: (logDir) => runPostgresScenario(params, logDir),
  embedded: (logDir) => runEmbeddedScenario(params, logDir),
};

afterAll(() => {
  killAllStarted();
  if (results.length > 0) writeReports(params, results);
});

describe(`chaos (seed ${params.seed})`, () => {
  for (const scenario of params.scenarios) {
    it(`${scenario}: nothing lost, nothing reordered, duplicates only with the same webhook-id`, async () => {
      const result = await RUNNERS[scenario](path.join(REPORT_DIR, "logs", scenario));
      results.push(result);
      writeReports(params, results);
      const f = result.findings;
      process.stdout.write(
        `[chaos] ${scenario}: ${f.accepted} events, ${f.delivered} delivered, ${f.dlq} in the DLQ, ` +
          `${f.duplicates} duplicates (${(f.duplicateRate * 100).toFixed(3)} %), ${result.faults.length} faults\n`,
      );
      const bad = Object.fromEntries(Object.entries(violationsOf(result)).filter(([, n]) => n > 0));
      expect(bad, JSON.stringify({ ...f.examples, ...result.runExamples }, null, 1).slice(0, 4000)).toEqual(
        {},
      );
      expect(f.accepted).toBe(scenario === "postgres" ? params.events : params.embeddedEvents);
      expect(f.delivered + f.dlq).toBe(f.expectedDeliveries);
      expect(f.dlq).toBeGreaterThanOrEqual(f.dlqExpected);
      expect(f.duplicateRate).toBeLessThanOrEqual(
        scenario === "postgres" ? params.maxDuplicateRate : params.embeddedMaxDuplicateRate,
      );
    });
  }
});
