import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Queryable } from "../../../src/store/db.ts";
import { freePort } from "../../support/port.ts";
import { checkInvariants, counterMismatches, type Stall, violationLog } from "./check.ts";
import { ADMIN_TOKEN, heraldEnv } from "./env.ts";
import { crashWindows, type FaultRecord, type PlannedFault, planDistributed } from "./faults.ts";
import { type ChaosParams, HERALD_TIMINGS } from "./params.ts";
import { PrivatePostgres } from "./postgres.ts";
import { type Exit, HeraldChild, killAllStarted, runHerald, waitHttpOk } from "./procs.ts";
import { Producer } from "./producer.ts";
import { ChaosReceiver } from "./receiver.ts";
import { ChaosRedis } from "./redis.ts";
import { firstWithin, receiptTimesByPid, type ScenarioResult, sleep, survivor } from "./result.ts";
import { createRng } from "./rng.ts";
import { createSubscriptions, Operator, typeOf } from "./workload.ts";

/** How a process that could not start because PostgreSQL was down ends its log. */
const STARTUP_OUTAGE =
  /database system is (starting up|not yet accepting connections|shutting down)|ECONNREFUSED/;
/** An uncaught error: a crash, whatever the cause. */
const CRASH = /Unhandled 'error' event|uncaughtException|Uncaught/;

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").slice(-4000);
  } catch {
    return "";
  }
}

/** A surviving process must serve again within this window after an outage ends (when observed this long). */
const RESUME_WINDOW_MS = 30_000;

function queryable(pool: pg.Pool): Queryable {
  return {
    async query<R>(sql: string, params?: readonly unknown[]) {
      const res = await pool.query(sql, params as unknown[] | undefined);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
  };
}

/**
 * The distributed deployment under faults: a private PostgreSQL and Redis, `apis` API processes and
 * `dispatchers` dispatcher processes, a producer, a flapping receiver, and the fault plan of the seed.
 */
export async function runPostgresScenario(params: ChaosParams, logDir: string): Promise<ScenarioResult> {
  const started = Date.now();
  const rng = createRng(params.seed);
  const plan = planDistributed(createRng(params.seed ^ 0x5eed), params.durationS * 1000, params);
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const cleanups: Array<() => Promise<void>> = [];
  const children: HeraldChild[] = [];
  const unexpectedExits: Exit[] = [];
  const startFailures: Exit[] = [];
  const {
    counts: runViolations,
    examples: runExamples,
    note,
  } = violationLog([
    "unexpected_exit",
    "not_recovered",
    "stuck_in_flight_during_run",
    "counter_mismatch_during_run",
    "not_drained",
    "operator_failed",
  ]);
  try {
    const postgres = await PrivatePostgres.create();
    cleanups.push(() => postgres.destroy());
    const redis = await ChaosRedis.create();
    cleanups.push(() => redis.stop());
    const base = { databaseUrl: postgres.url, redisUrl: redis.url };
    await runHerald(["migrate"], heraldEnv({ ...base, port: 0 }));

    let stopping = false;
    const onExit = (e: Exit) => {
      if (e.expected || stopping) return;
      const child = children.find((c) => c.name === e.name);
      const entry = child?.history.find((h) => h.pid === e.pid);
      const tail = readTail(path.join(logDir, `${e.name}.log`));
      if (entry && e.at - entry.startedAt < 60_000 && STARTUP_OUTAGE.test(tail) && !CRASH.test(tail)) {
        // Started while PostgreSQL was down or recovering: the start fails (status 1), a supervisor's
        // restart gets it going. Counted apart: it never served, so it had nothing to recover.
        startFailures.push(e);
      } else {
        unexpectedExits.push(e);
        note(
          "unexpected_exit",
          `${e.name} (pid ${e.pid}) exited by itself: code ${e.code}, signal ${e.signal}: ${tail.slice(-600)}`,
        );
      }
      // A supervisor would start it again; so does the run, to go on.
      setTimeout(() => {
        if (!stopping && child && !child.running) child.start();
      }, 1000);
    };
    const apis: HeraldChild[] = [];
    const apiUrls: string[] = [];
    for (let i = 0; i < params.apis; i++) {
      const port = await freePort();
      apis.push(new HeraldChild(`api-${i}`, "api", heraldEnv({ ...base, port }), logDir, onExit));
      apiUrls.push(`http://127.0.0.1:${port}`);
    }
    const dispatchers: HeraldChild[] = [];
    for (let i = 0; i < params.dispatchers; i++) {
      dispatchers.push(
        new HeraldChild(`dispatcher-${i}`, "dispatcher", heraldEnv({ ...base, port: 0 }), logDir, onExit),
      );
    }
    children.push(...apis, ...dispatchers);
    cleanups.push(async () => {
      stopping = true;
      await Promise.all(children.map((c) => c.stop()));
    });

    const receiver = await new ChaosReceiver(
      rng,
      {
        hangMs: HERALD_TIMINGS.requestTimeoutMs + 1000,
        slowMinMs: HERALD_TIMINGS.drainLockTtlMs + 100,
        slowMaxMs: HERALD_TIMINGS.drainLockTtlMs + 500,
      },
      () => children.filter((c) => c.running).map((c) => c.pid),
    ).start();
    cleanups.push(() => receiver.close());

    for (const c of children) c.start();
    await Promise.all(apiUrls.map((u, i) => waitHttpOk(`${u}/healthz`, 60_000, `api-${i}`)));
    const subs = await createSubscriptions(apiUrls[0]!, ADMIN_TOKEN, receiver);

    const pool = new pg.Pool({
      connectionString: postgres.url,
      max: 3,
      connectionTimeoutMillis: 3000,
      statement_timeout: 30_000,
    });
    pool.on("error", () => {
      /* PostgreSQL crashed under an idle client: the pool drops it */
    });
    cleanups.push(() => pool.end());
    const db = queryable(pool);

    const operator = new Operator(() => apiUrls, ADMIN_TOKEN, subs);
    operator.start();
    cleanups.push(() => operator.stop());

    // Sampling during the run: rows in flight well past their lease, counters against the rows.
    let pgUpSince = Date.now();
    let pgDown = false;
    const stalled = new Set<HeraldChild>();
    const samples = { taken: 0, judged: 0 };
    const stuckAfterMs = HERALD_TIMINGS.schedulerIntervalMs + 5000;
    let sampling = false;
    const sampler = setInterval(async () => {
      if (sampling) return;
      sampling = true;
      try {
        const now = Date.now();
        const judge =
          !pgDown &&
          now - pgUpSince > 15_000 &&
          dispatchers.some((d) => d.running && !stalled.has(d) && now - d.startedAt > 10_000);
        const res = await db.query<{ stuck: number }>(
          `SELECT count(*)::int AS stuck FROM deliveries
           WHERE status = 'in_flight' AND lease_expires_at < now() - ($1::double precision * interval '1 millisecond')`,
          [stuckAfterMs],
        );
        const mism = await counterMismatches(db);
        samples.taken += 1;
        for (const m of mism) note("counter_mismatch_during_run", m);
        if (judge) {
          samples.judged += 1;
          const stuck = res.rows[0]?.stuck ?? 0;
          if (stuck > 0)
            note(
              "stuck_in_flight_during_run",
              `${stuck} rows in flight more than ${stuckAfterMs} ms past their lease`,
            );
        }
      } catch {
        /* PostgreSQL down */
      } finally {
        sampling = false;
      }
    }, 2000);
    cleanups.push(async () => clearInterval(sampler));

    const producer = new Producer(apiUrls, ADMIN_TOKEN, "chaos", typeOf, (i) => apis[i]!.pid);
    const t0 = Date.now();
    const productionDone = producer.run(params.events, params.durationS, params.batchSize);
    let productionFailed: unknown = null;
    productionDone.catch((err: unknown) => {
      productionFailed = err;
    });

    // The fault driver.
    const faults: FaultRecord[] = [];
    const stalls: Stall[] = [];
    const execute = async (f: PlannedFault): Promise<void> => {
      const rec: FaultRecord = { kind: f.kind, target: "", plannedAtMs: f.atMs, at: Date.now(), end: 0 };
      faults.push(rec);
      switch (f.kind) {
        case "dispatcher_kill": {
          const live = dispatchers.filter((d) => !stalled.has(d));
          const d = live.includes(dispatchers[f.target]!) ? dispatchers[f.target]! : live[0]!;
          rec.target = d.name;
          rec.pidBefore = d.pid;
          await d.killAndRestart(f.downMs, f.downMs > 0);
          rec.pidAfter = d.pid;
          rec.end = Date.now();
          rec.note = f.downMs === 0 ? "restarted at once" : `down ${f.downMs} ms`;
          return;
        }
        case "api_kill": {
          const a = apis[f.target]!;
          rec.target = a.name;
          rec.pidBefore = a.pid;
          await a.killAndRestart(f.downMs, true);
          rec.pidAfter = a.pid;
          rec.end = Date.now();
          try {
            await waitHttpOk(`${apiUrls[f.target]}/healthz`, 60_000, a.name);
            rec.recoveryMs = Date.now() - rec.end;
          } catch {
            rec.recoveryMs = null;
            note("not_recovered", `${a.name} did not answer within 60 s of its restart`);
          }
          return;
        }
        case "manual_pause": {
          rec.target = "ceiling";
          await operator.pause("ceiling");
          await sleep(f.downMs);
          await operator.resume("ceiling");
          rec.end = Date.now();
          return;
        }
        case "redis_outage": {
          rec.target = "redis";
          await redis.stop();
          await sleep(f.downMs);
          await redis.start();
          rec.end = Date.now();
          rec.note = `down ${f.downMs / 1000} s`;
          return;
        }
        case "postgres_crash": {
          rec.target = "postgres";
          pgDown = true;
          await postgres.crash();
          await postgres.start();
          pgDown = false;
          pgUpSince = Date.now();
          rec.end = pgUpSince;
          rec.note = `down ${rec.end - rec.at} ms (pg_ctl -m immediate stop, start)`;
          return;
        }
        case "stall": {
          const d = dispatchers[f.target]!;
          rec.target = d.name;
          if (!d.running) {
            rec.note = "skipped: not running";
            rec.end = Date.now();
            return;
          }
          stalled.add(d);
          const pid = d.pid;
          const stopAt = Date.now();
          process.kill(pid, "SIGSTOP");
          await sleep(HERALD_TIMINGS.leaseMs + HERALD_TIMINGS.schedulerIntervalMs + 3000);
          const contAt = Date.now();
          try {
            process.kill(pid, "SIGCONT");
          } catch {
            /* killed meanwhile */
          }
          stalled.delete(d);
          stalls.push({ name: d.name, pid, stopAt, contAt });
          rec.pidBefore = pid;
          rec.end = contAt;
          rec.note = `stopped ${contAt - stopAt} ms (lease ${HERALD_TIMINGS.leaseMs} ms)`;
          return;
        }
        default:
          throw new Error(`unknown fault ${f.kind}`);
      }
    };
    const running: Promise<void>[] = [];
    for (const f of plan) {
      await sleep(t0 + f.atMs - Date.now());
      if (productionFailed) break;
      running.push(execute(f));
    }
    await Promise.all(running);
    await productionDone;
    const productionMs = Date.now() - t0;

    // Drain: no more faults; the receiver answers normally (but for the events it never accepts).
    receiver.calm = true;
    operator.calm();
    const drainStart = Date.now();
    let drained = false;
    while (Date.now() - drainStart < params.drainTimeoutS * 1000) {
      await operator.pass(true);
      try {
        const r = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM deliveries WHERE status IN ('pending', 'in_flight')`,
        );
        if ((r.rows[0]?.n ?? 1) === 0) {
          drained = true;
          break;
        }
      } catch {
        /* try again */
      }
      await sleep(500);
    }
    const drainMs = Date.now() - drainStart;
    if (!drained) note("not_drained", `queues not empty ${params.drainTimeoutS} s after production stopped`);
    await operator.stop();
    clearInterval(sampler);
    while (sampling) await sleep(20);
    for (const e of operator.errors) note("operator_failed", e);

    const runEnd = Date.now();
    // Recovery: after each outage, every process that lived through it served again by itself.
    const byPid = receiptTimesByPid(receiver);
    for (const rec of faults) {
      if (rec.kind === "dispatcher_kill" && rec.pidAfter) {
        const h = dispatchers
          .find((d) => d.name === rec.target)!
          .history.find((e) => e.pid === rec.pidAfter)!;
        const until = Math.min(h.exitedAt ?? runEnd, runEnd);
        const t = firstWithin(byPid.get(rec.pidAfter), rec.end, until);
        rec.recoveryMs = t === null ? null : t - rec.end;
        if (t === null && until - rec.end >= RESUME_WINDOW_MS) {
          note(
            "not_recovered",
            `${rec.target} (new pid ${rec.pidAfter}) sent nothing in ${until - rec.end} ms`,
          );
        }
      }
      if (rec.kind === "stall" && rec.pidBefore) {
        const t = firstWithin(byPid.get(rec.pidBefore), rec.end, runEnd);
        rec.recoveryMs = t === null ? null : t - rec.end;
      }
      if (rec.kind === "redis_outage" || rec.kind === "postgres_crash") {
        const waits: string[] = [];
        let worst: number | null = 0;
        for (const d of dispatchers) {
          const s = survivor(d, rec.at, rec.end);
          if (!s) continue;
          const until = Math.min(s.until, runEnd);
          const t = firstWithin(byPid.get(s.pid), rec.end, until);
          if (t === null) {
            if (until - rec.end >= RESUME_WINDOW_MS) {
              worst = null;
              note(
                "not_recovered",
                `${d.name} (pid ${s.pid}) sent nothing in the ${until - rec.end} ms after the ${rec.kind} ended`,
              );
            }
            waits.push(`${d.name}: none`);
          } else {
            if (worst !== null) worst = Math.max(worst, t - rec.end);
            waits.push(`${d.name}: ${t - rec.end} ms`);
          }
        }
        if (rec.kind === "postgres_crash") {
          apis.forEach((a, i) => {
            const s = survivor(a, rec.at, rec.end);
            if (!s) return;
            const until = Math.min(s.until, runEnd);
            const acc = producer.accepts.find(
              (x) => x.api === i && x.pid === s.pid && x.at >= rec.end && x.at <= until,
            );
            if (!acc) {
              if (until - rec.end >= RESUME_WINDOW_MS) {
                worst = null;
                note("not_recovered", `${a.name} (pid ${s.pid}) accepted nothing after PostgreSQL came back`);
              }
              waits.push(`${a.name}: none`);
            } else {
              if (worst !== null) worst = Math.max(worst, acc.at - rec.end);
              waits.push(`${a.name}: ${acc.at - rec.end} ms`);
            }
          });
        }
        rec.recoveryMs = worst;
        rec.note = `${rec.note ?? ""}; served again on the same PIDs: ${waits.join(", ")}`;
      }
    }

    const findings = await checkInvariants({
      db,
      accepted: producer.accepted,
      subs,
      receiver,
      stalls,
      resumedAutoPauses: operator.resumedAutoPauses,
      crashWindows: crashWindows(faults, HERALD_TIMINGS.requestTimeoutMs),
    });
    stopping = true;
    await Promise.all(children.map((c) => c.stop()));
    let staleResultsLogged = 0;
    for (const d of dispatchers) {
      const log = fs.readFileSync(path.join(logDir, `${d.name}.log`), "utf8");
      for (const m of log.matchAll(/"stale":(\d+)/g)) staleResultsLogged += Number(m[1]);
    }
    return {
      scenario: "postgres",
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
      startFailures,
      samples,
      staleResultsLogged,
      processes: Object.fromEntries(children.map((c) => [c.name, c.history.map((h) => h.pid)])),
    };
  } finally {
    for (const c of cleanups.reverse()) {
      await c().catch(() => {});
    }
    killAllStarted();
  }
}
