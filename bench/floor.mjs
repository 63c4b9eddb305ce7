#!/usr/bin/env node
/**
 * PostgreSQL's floor for Herald's row lifecycle on this machine, without Herald, HTTP or Redis:
 * `node bench/floor.mjs [--n 100000] [--workers 2] [--batch 64] [--sync]`.
 *
 * In a fresh schema migrated by Herald itself (`herald migrate`, so the tables and indexes are exactly
 * Herald's), it inserts N events and N pending deliveries of one subscription in batches of 1,000 (what
 * accepting does), then `--workers` connections each loop: flip up to `--batch` due pending rows to
 * in_flight (`FOR UPDATE SKIP LOCKED`), then mark them delivered — two autocommit statements per batch,
 * with synchronous_commit off like Herald's claims and records (`--sync`: on). No HTTP and no signing:
 * the number is what the database alone allows for one delivery's insert and two updates, the ceiling
 * any design on these tables and indexes can reach here. Prints one JSON line; bench/README.md cites it.
 *
 * `--setup "<SQL>"` runs SQL on Herald's migrated tables before the load (an index dropped or changed, a
 * storage parameter): what a schema change would save, measured before making it.
 *
 * `--minimal` runs the same lifecycle on the smallest table a PostgreSQL job queue can have (an id, a
 * status, the payload, a lock owner; the primary key and one partial index on pending rows): what any
 * design that keeps one durable row per delivery in PostgreSQL pays at least, whatever else it keeps.
 */
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { cpuMeter } from "./lib/proc.mjs";
import { numberOption as opt } from "./lib/util.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const N = opt("--n", 100_000);
const WORKERS = opt("--workers", 2);
const BATCH = opt("--batch", 64);
const SYNC = args.includes("--sync") ? "on" : "off";
const MINIMAL = args.includes("--minimal");
const SETUP = args.includes("--setup") ? args[args.indexOf("--setup") + 1] : null;
if (SETUP !== null && (MINIMAL || !SETUP))
  throw new Error("floor: --setup takes SQL, for Herald's tables only");

/** The statements of one lifecycle: Herald's tables (default) or the minimal job table. */
const SQL = MINIMAL
  ? {
      insert: `INSERT INTO jobs (status, payload)
               SELECT 'pending', jsonb_build_object('i', g) FROM generate_series(1, $1::int) g`,
      claim: `WITH flipped AS (
                UPDATE jobs SET status = 'active', locked_by = $2
                WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                RETURNING id
              )
              SELECT set_config('synchronous_commit', $3, true), array_agg(id) AS ids FROM flipped`,
      complete: `WITH done AS (UPDATE jobs SET status = 'done', locked_by = NULL WHERE id = ANY($1::bigint[]) RETURNING 1)
                 SELECT set_config('synchronous_commit', $2, true), count(*) FROM done`,
    }
  : {
      insert: `WITH ev AS (
         INSERT INTO events (tenant_id, event_type, occurred_at, payload)
         SELECT 't', 'x', now(), jsonb_build_object('i', g) FROM generate_series(1, $1::int) g
         RETURNING event_id
       )
       INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
       SELECT 'sub_floor', event_id, event_id, 'msg_' || event_id, 1, 'pending', now() FROM ev`,
      claim: `WITH picked AS (
           SELECT delivery_id FROM deliveries
           WHERE subscription_id = 'sub_floor' AND status = 'pending' AND scheduled_at <= now()
           ORDER BY scheduled_at, position LIMIT $1 FOR UPDATE SKIP LOCKED
         ), flipped AS (
           UPDATE deliveries d SET status = 'in_flight', attempted_at = now(), lease_owner = $2,
                  lease_expires_at = now() + interval '1 minute'
           FROM picked WHERE d.delivery_id = picked.delivery_id
           RETURNING d.delivery_id
         )
         SELECT set_config('synchronous_commit', $3, true), array_agg(delivery_id) AS ids FROM flipped`,
      complete: `WITH done AS (
           UPDATE deliveries SET status = 'delivered', completed_at = now(), response_status = 200, latency_ms = 1,
                  lease_owner = NULL, lease_expires_at = NULL
           WHERE delivery_id = ANY($1::bigint[]) RETURNING 1
         )
         SELECT set_config('synchronous_commit', $2, true), count(*) FROM done`,
    };
const base = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
if (!/@(127\.0\.0\.1|localhost)[:/]/.test(base)) throw new Error("floor: PostgreSQL must be on loopback");

const schema = `hb_floor_${Date.now()}`;
const url = `${base}${base.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
try {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  if (MINIMAL) {
    await c.query(
      `CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, status text NOT NULL,
                          payload jsonb NOT NULL, locked_by text)`,
    );
    await c.query("CREATE INDEX jobs_pending ON jobs (id) WHERE status = 'pending'");
  } else {
    execFileSync(process.execPath, [path.join(root, "bin", "herald.js"), "migrate"], {
      env: { ...process.env, DATABASE_URL: url, HERALD_ADMIN_TOKEN: "floor-benchmark-token-0123456789" },
      stdio: "ignore",
    });
    if (SETUP) await c.query(SETUP);
    await c.query(
      `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling, dlq_ceiling,
                                  max_in_flight, secret)
       VALUES ('sub_floor', 't', 'http://127.0.0.1:9/', '{x}', 'unordered', 10000000, 1000, 1000, 'whsec_x')`,
    );
  }
  const self = [{ role: "floor", pid: process.pid }];
  const insertCpu = cpuMeter(self);
  const t0 = performance.now();
  for (let done = 0; done < N; done += 1000) {
    const n = Math.min(1000, N - done);
    await c.query(SQL.insert, [n]);
  }
  const insertS = (performance.now() - t0) / 1000;
  const insertUsed = insertCpu.stop();
  await c.query("ANALYZE");
  await c.end();

  const dispatchCpu = cpuMeter(self);
  const t1 = performance.now();
  const worker = async (w) => {
    const k = new pg.Client({ connectionString: url });
    await k.connect();
    let moved = 0;
    for (let round = 0; round < N; round++) {
      const claimed = await k.query(SQL.claim, [BATCH, `w${w}`, SYNC]);
      const ids = claimed.rows[0].ids ?? [];
      if (ids.length === 0) break;
      await k.query(SQL.complete, [ids, SYNC]);
      moved += ids.length;
    }
    return { moved, client: k };
  };
  const done = await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  const moved = done.reduce((a, b) => a + b.moved, 0);
  const dispatchS = (performance.now() - t1) / 1000;
  // Measured before the connections close: a backend's CPU time goes with it when it exits.
  const dispatchUsed = dispatchCpu.stop();
  await Promise.all(done.map((d) => d.client.end()));
  // PostgreSQL's CPU per row, in microseconds (every postgres process: the backends, WAL writer, …).
  const us = (used, rows) => (used ? Math.round((used.postgres * 1e6) / rows) : null);
  const version = (await admin.query("SHOW server_version")).rows[0].server_version;
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      machine: { cores: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      postgres: version,
      n: N,
      workers: WORKERS,
      batch: BATCH,
      synchronous_commit: SYNC,
      tables: MINIMAL ? "minimal job table" : SETUP ? `Herald's, then: ${SETUP}` : "Herald's",
      insert_rows_per_s: Math.round(N / insertS),
      dispatch_rows_per_s: Math.round(moved / dispatchS),
      postgres_cpu_us_per_row: { insert: us(insertUsed, N), claim_and_record: us(dispatchUsed, moved) },
      machine_cpu_s: {
        insert: insertUsed?.machineSeconds ?? null,
        dispatch: dispatchUsed?.machineSeconds ?? null,
      },
      moved,
    }),
  );
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
