import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { summarize } from "./faults.ts";
import type { ChaosParams } from "./params.ts";
import { HERALD_TIMINGS } from "./params.ts";
import type { ScenarioResult } from "./result.ts";

export const REPORT_DIR = path.resolve("test-results/chaos");

/** The commit the run ran at, with `+dirty` when src/ has uncommitted changes. */
export function commitOf(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "bin"], {
      encoding: "utf8",
    }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

/** Every violation of a scenario (store checks and run checks), zero or not. */
export function violationsOf(r: ScenarioResult): Record<string, number> {
  return { ...r.findings.violations, ...r.runViolations };
}

export function figures(r: ScenarioResult) {
  const f = r.findings;
  const all = violationsOf(r);
  const n = (...keys: string[]) => keys.reduce((sum, k) => sum + (all[k] ?? 0), 0);
  return {
    scenario: r.scenario,
    events_accepted: f.accepted,
    deliveries_expected: f.expectedDeliveries,
    delivered: f.delivered,
    dlq: f.dlq,
    dlq_expected_by_design: f.dlqExpected,
    attempts: f.attempts,
    requests_received: f.receipts,
    lost: n("lost", "accepted_event_missing", "not_terminal", "delivered_without_2xx_receipt"),
    reordered: n("reordered", "positions_not_in_acceptance_order"),
    duplicates: f.duplicates,
    duplicate_rate: f.duplicateRate,
    duplicates_around_a_crash: f.duplicatesAroundCrash,
    duplicates_with_another_webhook_id: n("two_webhook_ids", "receipt_webhook_id_mismatch"),
    stuck_rows: n("in_flight_at_end", "pending_at_end", "stuck_in_flight_during_run"),
    automatic_pauses: f.autoPauses,
    faults: summarize(r.faults),
    production_s: Math.round(r.productionMs / 100) / 10,
    drain_s: Math.round(r.drainMs / 100) / 10,
    wall_s: Math.round(r.wallMs / 100) / 10,
  };
}

function table(rows: Array<[string, string | number]>): string {
  return ["| | |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}

export function markdown(params: ChaosParams, commit: string, results: readonly ScenarioResult[]): string {
  const parts = [
    `# Chaos run ${new Date().toISOString()}`,
    "",
    `Profile \`${params.profile}\`, seed \`${params.seed}\`, commit \`${commit}\`, node ${process.version}, ${os.cpus().length} CPUs.`,
    "",
    `Herald timings: request timeout ${HERALD_TIMINGS.requestTimeoutMs} ms, lease ${HERALD_TIMINGS.leaseMs} ms, drain-lock TTL ${HERALD_TIMINGS.drainLockTtlMs} ms, scheduler ${HERALD_TIMINGS.schedulerIntervalMs} ms, retries ${HERALD_TIMINGS.retryScheduleMs.join(",")} ms.`,
    "",
    `Reproduce: \`${reproduceCommand(params)}\``,
  ];
  for (const r of results) {
    const f = figures(r);
    const bad = Object.entries(violationsOf(r)).filter(([, n]) => n > 0);
    parts.push(
      "",
      `## ${r.scenario}`,
      "",
      table([
        ["events accepted", f.events_accepted],
        ["deliveries expected (event × matching subscription)", f.deliveries_expected],
        ["delivered", f.delivered],
        ["in the DLQ (with a reason)", `${f.dlq} (${f.dlq_expected_by_design} by design)`],
        ["attempts / requests received", `${f.attempts} / ${f.requests_received}`],
        ["**lost**", f.lost],
        ["**reordered**", f.reordered],
        [
          "**duplicates** (after a 2xx, same webhook-id)",
          `${f.duplicates} (${(f.duplicate_rate * 100).toFixed(3)} %), ${f.duplicates_around_a_crash} of them around a crash`,
        ],
        ["duplicates under another webhook-id", f.duplicates_with_another_webhook_id],
        ["stuck rows", f.stuck_rows],
        ["automatic pauses (each with its audit row)", f.automatic_pauses],
        ["production / drain / wall time", `${f.production_s} s / ${f.drain_s} s / ${f.wall_s} s`],
        ["producer retries / duplicate answers", `${r.producer.retries} / ${r.producer.duplicateAnswers}`],
        ["stale results ignored (logged)", r.staleResultsLogged],
        ["processes started during an outage that exited at start", r.startFailures.length],
        [
          "attempts by outcome",
          Object.entries(r.findings.attemptsByOutcome)
            .map(([k, n]) => `${k} ${n}`)
            .join(", "),
        ],
      ]),
      "",
      "| fault | count | recovery min / median / max (ms) | no request seen from the process |",
      "| --- | --- | --- | --- |",
      ...Object.entries(f.faults).map(
        ([k, s]) =>
          `| ${k} | ${s.count} | ${s.recoveryMs ? `${s.recoveryMs.min} / ${s.recoveryMs.median} / ${s.recoveryMs.max}` : "-"} | ${s.notRecovered} |`,
      ),
      "",
      bad.length === 0
        ? "Every invariant held."
        : `**Violations:** ${bad.map(([k, n]) => `${k} ${n}`).join(", ")}`,
    );
    for (const [k, ex] of Object.entries({ ...r.findings.examples, ...r.runExamples })) {
      if (ex.length) parts.push("", `- ${k}:`, ...ex.slice(0, 5).map((e) => `  - ${e}`));
    }
  }
  return `${parts.join("\n")}\n`;
}

export function reproduceCommand(params: ChaosParams): string {
  const env = [
    `CHAOS_SEED=${params.seed}`,
    `CHAOS_EVENTS=${params.events}`,
    `CHAOS_DURATION_S=${params.durationS}`,
    `CHAOS_DISPATCHER_KILLS=${params.dispatcherKills}`,
    `CHAOS_API_KILLS=${params.apiKills}`,
    `CHAOS_REDIS_OUTAGE_S=${params.redisOutageS}`,
    `CHAOS_EMBEDDED_EVENTS=${params.embeddedEvents}`,
    `CHAOS_EMBEDDED_KILLS=${params.embeddedKills}`,
  ];
  return `${env.join(" ")} npm run test:chaos${params.profile === "ci" ? ":ci" : ""}`;
}

/** Writes test-results/chaos/<scenario>.json, and summary.json / summary.md over the scenarios run so far. */
export function writeReports(params: ChaosParams, results: readonly ScenarioResult[]): void {
  fs.mkdirSync(REPORT_DIR, { recursive: true });
  const commit = commitOf();
  for (const r of results) {
    fs.writeFileSync(
      path.join(REPORT_DIR, `${r.scenario}.json`),
      `${JSON.stringify({ params, commit, figures: figures(r), violations: violationsOf(r), result: r }, null, 2)}\n`,
    );
  }
  fs.writeFileSync(
    path.join(REPORT_DIR, "summary.json"),
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        profile: params.profile,
        seed: params.seed,
        commit,
        params,
        timings: HERALD_TIMINGS,
        scenarios: results.map((r) => ({ ...figures(r), violations: violationsOf(r) })),
      },
      null,
      2,
    )}\n`,
  );
  fs.writeFileSync(path.join(REPORT_DIR, "summary.md"), markdown(params, commit, results));
}
