#!/usr/bin/env node
/**
 * What planning costs Herald's claim: PostgreSQL's CPU per claimed row when the claim is planned afresh
 * (PostgreSQL's own choice for a prepared statement, `plan_cache_mode = auto`) against one generic plan
 * kept for the session (`force_generic_plan`, what Herald's named-statement pool uses, src/store/pg-db.ts):
 *
 *   node bench/claim-plans.mjs [--n 200000] [--claims 2000] [--batch 21] [--rounds 2] [--embedded]
 *
 * In a fresh schema migrated by Herald (`herald migrate`), N pending deliveries of one unordered
 * subscription, analyzed. Then, on one connection per mode and alternating the modes round by round,
 * Herald's own `claimDue` + `recordResults` (the compiled build in dist/: run `npm run build` after editing
 * src/) claim `--batch` rows and record them delivered, `--claims` times. The backend's CPU comes from
 * /proc (the benchmark and PostgreSQL must share the machine). Prints one JSON line per round and mode,
 * with how many claims were planned generic and custom (pg_prepared_statements). `--embedded` runs the
 * same loop in an in-memory PGlite instead: PGlite's `query()` against Herald's prepared statements.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { BENCH_ENCRYPTION_KEY, numberOption as opt } from "./lib/util.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const N = opt("--n", 200_000);
const CLAIMS = opt("--claims", 2000);
const BATCH = opt("--batch", 21);
const ROUNDS = opt("--rounds", 2);
if (CLAIMS * BATCH * ROUNDS * 2 + 40 * BATCH > N) {
  throw new Error(`--n ${N} is too small for ${ROUNDS} rounds of 2 × ${CLAIMS} claims of ${BATCH}`);
}
const base = process.env.HERALD_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const { claimDue } = await import(path.join(root, "dist/store/claim.js"));
const { recordResults } = await import(path.join(root, "dist/store/record.js"));

const { attemptResult } = await import(path.join(root, "dist/dispatch/outcome.js"));
/** What the dispatcher records for a 200 answer (Herald's own outcome code). */
const delivered = (d) =>
  attemptResult(
    d.delivery_id,
    d.attempt_number,
    { ok: true, status: 200, latencyMs: 1, responseBody: "" },
    [1000],
  );
async function run(db, claims) {
  let rows = 0;
  for (let i = 0; i < claims; i++) {
    const c = await claimDue(db, {
      owner: "bench",
      leaseMs: 60_000,
      limit: BATCH,
      subscriptionIds: ["sub_bench"],
    });
    rows += c.deliveries.length;
    await recordResults(db, "bench", c.deliveries.map(delivered));
  }
  return rows;
}
const SEED = [
  `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling,
                              dlq_ceiling, max_in_flight, secret, pending_count)
   VALUES ('sub_bench', 't', 'http://127.0.0.1:9/u', '{x}', 'unordered', ${N}, 1000, 1000, 'whsec_x', ${N})`,
  `INSERT INTO events (tenant_id, event_type, occurred_at, payload)
   SELECT 't', 'x', now(), '{"n": 1}'::jsonb FROM generate_series(1, ${N})`,
  `INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
   SELECT 'sub_bench', e.event_id, e.event_id, 'msg_' || e.event_id, 1, 'pending', now() FROM events e`,
  "ANALYZE",
];

// --embedded: the same loop in an in-memory PGlite (Herald's embedded store), PGlite's query() — parsed and
// planned on every call — against Herald's prepared named statements (src/store/embedded-prepared.ts).
// PGlite runs in this process: the CPU is this process's.
if (args.includes("--embedded")) {
  const { createEmbeddedDb } = await import(path.join(root, "dist/store/embedded-db.js"));
  const { migrate } = await import(path.join(root, "dist/store/migrate.js"));
  const db = await createEmbeddedDb(null);
  try {
    await migrate(db);
    for (const sql of SEED) await db.query(sql);
    const variants = {
      "query()": { ...db, query: (sql, params) => db.query(sql, params) },
      prepared: db,
    };
    for (const v of Object.values(variants)) await run(v, 20);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [variant, v] of Object.entries(variants)) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const rows = await run(v, CLAIMS);
        const cpu = process.cpuUsage(cpu0);
        console.log(
          JSON.stringify({
            round,
            embedded: variant,
            rows,
            processUsPerRow: Math.round(((cpu.user + cpu.system) / rows) * 10) / 10,
            msPerClaimAndRecord: Math.round(((performance.now() - t0) / CLAIMS) * 100) / 100,
          }),
        );
      }
    }
  } finally {
    await db.close();
  }
  process.exit(0);
}

const schema = `bench_claim_plans_${process.pid}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
const urlFor = (extra = "") =>
  `${base}${base.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}${extra}`)}`;
try {
  execFileSync(process.execPath, [path.join(root, "bin", "herald.js"), "migrate"], {
    env: {
      ...process.env,
      DATABASE_URL: urlFor(),
      HERALD_ADMIN_TOKEN: "claim-plans-benchmark-token-0123",
      HERALD_ENCRYPTION_KEY: BENCH_ENCRYPTION_KEY,
    },
    stdio: "ignore",
  });
  await admin.query(`SET search_path = ${schema}`);
  for (const sql of SEED) await admin.query(sql);

  /** One connection in the given plan_cache_mode, as a Herald `Db` (named statements stay prepared). */
  async function session(mode) {
    const client = new pg.Client({ connectionString: urlFor(` -c plan_cache_mode=${mode}`) });
    await client.connect();
    const pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    const db = {
      kind: "postgres",
      async query(sql, params = [], opts) {
        const r = await client.query(
          opts?.name ? { name: opts.name, text: sql, values: params } : { text: sql, values: params },
        );
        return { rows: r.rows, rowCount: r.rowCount ?? r.rows.length };
      },
    };
    return { client, pid, db };
  }
  /** CPU seconds of one backend so far (utime + stime from /proc). */
  const cpuOf = (pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  const sessions = { auto: await session("auto"), force_generic_plan: await session("force_generic_plan") };
  for (const s of Object.values(sessions)) await run(s.db, 20); // past the five custom plans of auto mode
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [mode, s] of Object.entries(sessions)) {
      const cpu0 = cpuOf(s.pid);
      const t0 = performance.now();
      const rows = await run(s.db, CLAIMS);
      const cpu = cpuOf(s.pid) - cpu0;
      const plans = await s.client.query(
        "SELECT name, generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements ORDER BY name",
      );
      console.log(
        JSON.stringify({
          round,
          plan_cache_mode: mode,
          rows,
          postgresUsPerRow: Math.round((cpu * 1e7) / rows) / 10,
          msPerClaimAndRecord: Math.round(((performance.now() - t0) / CLAIMS) * 100) / 100,
          plans: Object.fromEntries(
            plans.rows.map((p) => [p.name, { generic: p.generic, custom: p.custom }]),
          ),
        }),
      );
    }
  }
  for (const s of Object.values(sessions)) await s.client.end();
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
}
