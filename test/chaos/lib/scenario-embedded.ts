import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createEmbeddedDb } from "../../../src/store/embedded-db.ts";
import { freePort } from "../../support/port.ts";
import { call, type SubscriptionView } from "./api.ts";
import { checkInvariants, violationLog } from "./check.ts";
import { ADMIN_TOKEN, heraldEnv } from "./env.ts";
import { crashWindows, type FaultRecord, planEmbedded } from "./faults.ts";
import { type ChaosParams, HERALD_TIMINGS } from "./params.ts";
import { type Exit, HeraldChild, killAllStarted, waitHttpOk } from "./procs.ts";
import { Producer } from "./producer.ts";
import { ChaosReceiver } from "./receiver.ts";
import type { ScenarioResult } from "./result.ts";
import { sleep } from "./result.ts";
import { createRng } from "./rng.ts";
import { createSubscriptions, Operator, TENANT, typeOf } from "./workload.ts";

/** How long a restarted `herald start` may take to answer (PGlite recovers its WAL first). */
const READY_TIMEOUT_MS = 120_000;

/**
 * The embedded store under kills: one `herald start` process (PGlite in a temporary data directory, no
 * Redis), SIGKILLed under load and started again at once, as a supervisor would, without waiting for the
 * dead process to be reaped.
 */
export async function runEmbeddedScenario(params: ChaosParams, logDir: string): Promise<ScenarioResult> {
  const started = Date.now();
  const rng = createRng(params.seed ^ 0xe3bedd);
  const plan = planEmbedded(
    createRng(params.seed ^ 0xe3be),
    params.embeddedDurationS * 1000,
    params.embeddedKills,
  );
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chaos-embedded-"));
  const cleanups: Array<() => Promise<void>> = [
    async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  ];
  const unexpectedExits: Exit[] = [];
  const {
    counts: runViolations,
    examples: runExamples,
    note,
  } = violationLog(["unexpected_exit", "restart_refused", "not_recovered", "not_drained", "operator_failed"]);
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let stopping = false;
    const logFile = path.join(logDir, "embedded.log");
    const onExit = (e: Exit) => {
      if (e.expected || stopping) return;
      unexpectedExits.push(e);
      const tail = fs.readFileSync(logFile, "utf8").slice(-3000);
      const refused = /already open by process (\d+)/.exec(tail);
      if (refused) {
        note(
          "restart_refused",
          `pid ${e.pid} refused to start: data directory "already open by process ${refused[1]}"`,
        );
      } else {
        note(
          "unexpected_exit",
          `pid ${e.pid} exited by itself: code ${e.code}, signal ${e.signal}: ${tail.slice(-400)}`,
        );
      }
      setTimeout(() => {
        if (!stopping && !herald.running) herald.start();
      }, 500);
    };
    const herald = new HeraldChild("embedded", "start", heraldEnv({ port, dataDir }), logDir, onExit);
    cleanups.push(async () => {
      stopping = true;
      await herald.stop();
    });
    const receiver = await new ChaosReceiver(
      rng,
      {
        hangMs: HERALD_TIMINGS.requestTimeoutMs + 1000,
        slowMinMs: HERALD_TIMINGS.drainLockTtlMs + 100,
        slowMaxMs: HERALD_TIMINGS.drainLockTtlMs + 500,
      },
      () => (herald.running ? [herald.pid] : []),
    ).start();
    cleanups.push(() => receiver.close());
    herald.start();
    await waitHttpOk(`${url}/healthz`, READY_TIMEOUT_MS, "herald start");
    const subs = await createSubscriptions(url, ADMIN_TOKEN, receiver);
    const operator = new Operator(() => [url], ADMIN_TOKEN, subs);
    operator.start();
    cleanups.push(() => operator.stop());

    const producer = new Producer([url], ADMIN_TOKEN, TENANT, typeOf, () => herald.pid);
    const t0 = Date.now();
    let productionFailed: unknown = null;
    const productionDone = producer.run(params.embeddedEvents, params.embeddedDurationS, params.batchSize);
    productionDone.catch((err: unknown) => {
      productionFailed = err;
    });

    // Kills one after another: each restart must answer before the next kill.
    const faults: FaultRecord[] = [];
    for (const f of plan) {
      await sleep(t0 + f.atMs - Date.now());
      if (productionFailed) break;
      const rec: FaultRecord = {
        kind: "embedded_kill",
        target: "embedded",
        plannedAtMs: f.atMs,
        at: Date.now(),
        end: 0,
      };
      faults.push(rec);
      rec.pidBefore = herald.pid;
      await herald.killAndRestart(0, false);
      rec.pidAfter = herald.pid;
      rec.end = Date.now();
      rec.note = "restarted at once, before the old process was reaped";
      try {
        await waitHttpOk(`${url}/healthz`, READY_TIMEOUT_MS, "herald start after a kill");
        rec.recoveryMs = Date.now() - rec.at;
      } catch {
        rec.recoveryMs = null;
        note(
          "not_recovered",
          `no answer within ${READY_TIMEOUT_MS} ms of the kill at ${f.atMs} ms (pid ${herald.pid} ${herald.running ? "running" : "gone"}): ${fs.readFileSync(logFile, "utf8").slice(-600)}`,
        );
      }
    }
    await productionDone;
    const productionMs = Date.now() - t0;

    receiver.calm = true;
    operator.calm();
    const drainStart = Date.now();
    let drained = false;
    while (Date.now() - drainStart < params.drainTimeoutS * 1000) {
      await operator.pass(true);
      try {
        const r = await call<{ items: SubscriptionView[] }>(
          url,
          ADMIN_TOKEN,
          "GET",
          `/v1/subscriptions?tenant_id=${TENANT}&limit=100`,
        );
        if (r.status === 200 && r.body.items.every((s) => s.pending_count === 0 && s.status === "active")) {
          drained = true;
          break;
        }
      } catch {
        /* restarting */
      }
      await sleep(500);
    }
    const drainMs = Date.now() - drainStart;
    if (!drained) note("not_drained", `queues not empty ${params.drainTimeoutS} s after production stopped`);
    await operator.stop();
    for (const e of operator.errors) note("operator_failed", e);

    // The store is the process's alone: stop it, then read the data directory here.
    stopping = true;
    await herald.stop();
    const db = await createEmbeddedDb(dataDir);
    let findings: Awaited<ReturnType<typeof checkInvariants>>;
    try {
      findings = await checkInvariants({
        db,
        accepted: producer.accepted,
        subs,
        receiver,
        stalls: [],
        resumedAutoPauses: operator.resumedAutoPauses,
        crashWindows: crashWindows(faults, HERALD_TIMINGS.requestTimeoutMs),
      });
    } finally {
      await db.close();
    }
    return {
      scenario: "embedded",
      startedAt: new Date(started).toISOString(),
      wallMs: Date.now() - started,
      productionMs,
      drainMs,
      faults,
      producer: producer.stats,
      findings,
      runViolations,
      runExamples,
      unexpectedExits,
      startFailures: [],
      samples: { taken: 0, judged: 0 },
      staleResultsLogged: 0,
      processes: { embedded: herald.history.map((h) => h.pid) },
    };
  } finally {
    for (const c of cleanups.reverse()) {
      await c().catch(() => {});
    }
    killAllStarted();
  }
}
