/**
 * EXPLAIN (ANALYZE, BUFFERS) of Herald's hot statements, run through Herald's own code (src/service and
 * src/store), so the plans are those of the SQL in the tree today, with real parameters:
 *   1. accepting one event (acceptWith: one statement locking the subscriptions, writing the event, its
 *      deliveries and counters);
 *   2. a dispatcher claim (claimDue, 64 deliveries);
 *   3. recording their results (recordResults, all delivered).
 * Each statement is explained inside a savepoint that is rolled back, then run for real, so every step
 * sees the state the previous one left. Used by bench/profile.mjs against a schema it filled.
 *
 *   BENCH_DATABASE_URL=postgres://…?options=-c%20search_path%3D<schema> node --import tsx bench/lib/explain.ts
 *
 * Prints one JSON object: { steps: [{ step, statement, plan }] }.
 */
import { acceptWith } from "../../src/service/events.ts";
import { claimDue } from "../../src/store/claim.ts";
import type { Db, Queryable, QueryResult } from "../../src/store/db.ts";
import { createPgDb } from "../../src/store/pg-db.ts";
import { type AttemptResult, recordResults } from "../../src/store/record.ts";

interface Explained {
  step: string;
  statement: string;
  plan: string;
}

const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error("BENCH_DATABASE_URL is required");
const tenant = process.env.BENCH_TENANT ?? "t0";
const eventType = process.env.BENCH_EVENT_TYPE ?? "bench.event";

const plans: Explained[] = [];
let step = "";

function explaining(q: Queryable): Queryable {
  return {
    async query<R = Record<string, unknown>>(
      sql: string,
      params?: readonly unknown[],
    ): Promise<QueryResult<R>> {
      if (/^\s*(WITH|SELECT|UPDATE|INSERT|DELETE)\b/i.test(sql)) {
        await q.query("SAVEPOINT bench_explain");
        const r = await q.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
        await q.query("ROLLBACK TO SAVEPOINT bench_explain");
        plans.push({
          step,
          statement: sql.replace(/\s+/g, " ").trim().slice(0, 160),
          plan: r.rows.map((row) => row["QUERY PLAN"]).join("\n"),
        });
      }
      return q.query<R>(sql, params);
    },
  };
}

const inner = await createPgDb({ connectionString: url, max: 2, applicationName: "herald-bench-explain" });
const db: Db = {
  kind: inner.kind,
  query: (sql, params) => inner.query(sql, params),
  exec: (sql) => inner.exec(sql),
  close: () => inner.close(),
  transaction: (fn) => inner.transaction((tx) => fn(explaining(tx))),
};

try {
  step = "accept one event";
  await db.transaction((tx) =>
    acceptWith(tx, [
      {
        tenant_id: tenant,
        event_type: eventType,
        aggregate_id: null,
        occurred_at: new Date(),
        payload: { k: "explain", n: 0, t: Date.now() },
        idempotency_key: null,
        source_txn_id: null,
      },
    ]),
  );
  step = "claim (limit 64)";
  const owner = "bench-explain";
  const claim = await claimDue(db, { owner, leaseMs: 30_000, limit: 64 });
  step = `record ${claim.deliveries.length} results`;
  const results: AttemptResult[] = claim.deliveries.map((d) => ({
    delivery_id: d.delivery_id,
    status: "delivered",
    response_status: 200,
    response_body: "ok",
    error_kind: null,
    error_detail: null,
    latency_ms: 1,
    retry_delay_ms: null,
  }));
  await recordResults(db, owner, results);
  process.stdout.write(`${JSON.stringify({ steps: plans })}\n`);
} finally {
  await db.close();
}
