/**
 * PostgreSQL's floor for Herald's row lifecycle, without Herald, HTTP or Redis (`bench/floor.mjs` on the
 * command line, and the default run's `floor` scenario).
 *
 * In a fresh schema migrated by Herald itself (`herald migrate`, so the tables and indexes are exactly
 * Herald's), it inserts N events and N pending deliveries of one subscription in batches of 1,000 (what
 * accepting does), then `workers` connections each loop: flip up to `batch` due pending rows to in_flight
 * (`FOR UPDATE SKIP LOCKED`), then mark them delivered — two autocommit statements per batch, with
 * synchronous_commit off like Herald's claims and records (`sync: "on"` to wait for the flush). No HTTP
 * and no signing: the number is what the database alone costs for one delivery's insert and two updates,
 * the least any design on these tables and indexes can pay here.
 *
 * `setup` runs SQL on Herald's migrated tables before the load (an index dropped or changed, a storage
 * parameter): what a schema change would save, measured before making it. `minimal` runs the same
 * lifecycle on the smallest table a PostgreSQL job queue can have (an id, a status, the payload, a lock
 * owner; the primary key and one partial index on pending rows): what any design that keeps one durable row
 * per delivery in PostgreSQL pays at least, whatever else it keeps.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { cpuMeter } from "./proc.mjs";
import { BENCH_ENCRYPTION_KEY, EVENT_TYPE, payload } from "./util.mjs";
import { signatureHeaders } from "./webhook.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The statements of one lifecycle: Herald's tables (default) or the minimal job table. */
const statements = (minimal) =>
  minimal
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

/**
 * Runs one floor measurement in its own schema (dropped at the end) and returns rows/s and PostgreSQL's CPU
 * per row, in microseconds (every postgres process of the machine: the backends, the WAL writer, …).
 */
export async function measureFloor({
  pgUrl,
  n,
  workers = 2,
  batch = 64,
  sync = "off",
  minimal = false,
  setup = null,
}) {
  if (!/@(127\.0\.0\.1|localhost)[:/]/.test(pgUrl)) throw new Error("floor: PostgreSQL must be on loopback");
  if (setup !== null && (minimal || !setup))
    throw new Error("floor: setup takes SQL, for Herald's tables only");
  const SQL = statements(minimal);
  const schema = `hb_floor_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
  const url = `${pgUrl}${pgUrl.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  try {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    if (minimal) {
      await c.query(
        `CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, status text NOT NULL,
                            payload jsonb NOT NULL, locked_by text)`,
      );
      await c.query("CREATE INDEX jobs_pending ON jobs (id) WHERE status = 'pending'");
    } else {
      execFileSync(process.execPath, [path.join(root, "bin", "herald.js"), "migrate"], {
        env: {
          ...process.env,
          DATABASE_URL: url,
          HERALD_ADMIN_TOKEN: "floor-benchmark-token-0123456789",
          HERALD_ENCRYPTION_KEY: BENCH_ENCRYPTION_KEY,
        },
        stdio: "ignore",
      });
      if (setup) await c.query(setup);
      await c.query(
        `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling, dlq_ceiling,
                                    max_in_flight, secret)
         VALUES ('sub_floor', 't', 'http://127.0.0.1:9/', '{x}', 'unordered', 10000000, 1000, 1000, 'whsec_x')`,
      );
    }
    const self = [{ role: "floor", pid: process.pid }];
    const insertCpu = cpuMeter(self);
    const t0 = performance.now();
    for (let done = 0; done < n; done += 1000) {
      await c.query(SQL.insert, [Math.min(1000, n - done)]);
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
      for (let round = 0; round < n; round++) {
        const claimed = await k.query(SQL.claim, [batch, `w${w}`, sync]);
        const ids = claimed.rows[0].ids ?? [];
        if (ids.length === 0) break;
        await k.query(SQL.complete, [ids, sync]);
        moved += ids.length;
      }
      return { moved, client: k };
    };
    const done = await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
    const moved = done.reduce((a, b) => a + b.moved, 0);
    const dispatchS = (performance.now() - t1) / 1000;
    // Measured before the connections close: a backend's CPU time goes with it when it exits.
    const dispatchUsed = dispatchCpu.stop();
    await Promise.all(done.map((d) => d.client.end()));
    const us = (used, rows) => (used ? Math.round((used.postgres * 1e6) / rows) : null);
    return {
      n,
      workers,
      batch,
      synchronous_commit: sync,
      tables: minimal ? "minimal job table" : setup ? `Herald's, then: ${setup}` : "Herald's",
      insert_rows_per_s: Math.round(n / insertS),
      dispatch_rows_per_s: Math.round(moved / dispatchS),
      postgres_cpu_us_per_row: { insert: us(insertUsed, n), claim_and_record: us(dispatchUsed, moved) },
      machine_cpu_s: {
        insert: insertUsed?.machineSeconds ?? null,
        dispatch: dispatchUsed?.machineSeconds ?? null,
      },
      moved,
    };
  } finally {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

/**
 * The message's share of the floor, in this process: signing one webhook (its Standard Webhooks headers,
 * HMAC-SHA256 over `id.timestamp.body`: what Herald and the competitors' workers do for every delivery and
 * the ceiling does not; the body's JSON the ceiling builds too, so it is left out here), and parsing one
 * event out of a 1,000-event JSON batch (what any HTTP API accepting the benchmark's events does at least).
 * CPU microseconds per delivery and per event, from `process.cpuUsage`.
 */
export function measureMessage({ n }) {
  const cpuUs = (fn) => {
    const t = process.cpuUsage();
    fn();
    const used = process.cpuUsage(t);
    return used.user + used.system;
  };
  const data = Array.from({ length: 1000 }, (_, i) => payload(`F-${i}`, i, Date.now()));
  const bodies = data.map((d) =>
    JSON.stringify({ type: EVENT_TYPE, timestamp: new Date().toISOString(), data: d }),
  );
  const ts = Math.floor(Date.now() / 1000);
  let sink = 0;
  const signUs = cpuUs(() => {
    for (let i = 0; i < n; i++)
      sink += signatureHeaders(`msg_${i}`, ts, bodies[i % 1000])["webhook-signature"].length;
  });
  const batch = JSON.stringify({
    events: data.map((d) => ({ tenant_id: "t", event_type: EVENT_TYPE, payload: d })),
  });
  const rounds = Math.max(1, Math.round(n / 1000));
  const parseUs = cpuUs(() => {
    for (let r = 0; r < rounds; r++) sink += JSON.parse(batch).events.length;
  });
  if (sink === 0) throw new Error("floor: nothing measured");
  return {
    n,
    sign_us_per_delivery: Math.round((signUs / n) * 100) / 100,
    parse_us_per_event: Math.round((parseUs / (rounds * 1000)) * 100) / 100,
  };
}
