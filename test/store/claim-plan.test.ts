import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimDue } from "../../src/store/claim.ts";
import type { Db, QueryResult } from "../../src/store/db.ts";
import { recordResults } from "../../src/store/record.ts";
import { createTestStore, STORE_KINDS, type TestStore } from "../support/store.ts";

/**
 * Regression test for the backlog cliff (bench/README.md, profile findings 1): with planner statistics
 * taken while the tables were empty, the claim used to read every pending row of the queue twice per call.
 * Here 50,000 rows wait in one unordered and one ordered queue, the statistics say the tables are empty,
 * and a claim and a record must each read a few dozen pages, not the whole queue.
 */
const PENDING = 50_000;

interface Plan {
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
}

/** A Db that runs the statement it is given under EXPLAIN (ANALYZE, BUFFERS) and keeps the plan. */
function explaining(db: Db, plans: Plan[]): Db {
  return {
    ...db,
    async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      if (!/^\s*WITH (wanted|done) AS/.test(sql)) return db.query<R>(sql, params);
      const r = await db.query<{ "QUERY PLAN": unknown }>(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`,
        params,
      );
      const raw = r.rows[0]!["QUERY PLAN"];
      const doc = (typeof raw === "string" ? JSON.parse(raw) : raw) as Array<{ Plan: Plan }>;
      plans.push(doc[0]!.Plan);
      return { rows: [], rowCount: 0 };
    },
  };
}

const pagesRead = (p: Plan) => p["Shared Hit Blocks"] + p["Shared Read Blocks"];

describe.each(STORE_KINDS)("claim and record plans on %s", (kind) => {
  let store: TestStore;
  const subs = ["sub_plan_unordered", "sub_plan_ordered"];

  beforeAll(async () => {
    store = await createTestStore(kind);
    const db = store.db;
    await db.query(
      `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling,
                                  dlq_ceiling, max_in_flight, secret)
       VALUES ($1, 't', 'http://127.0.0.1:9/u', '{x}', 'unordered', 1000000, 1000, 1000, 'whsec_x'),
              ($2, 't', 'http://127.0.0.1:9/o', '{x}', 'ordered', 1000000, 1000, 10, 'whsec_x')`,
      subs,
    );
    // Statistics of empty tables: what a fresh install has until something analyzes them.
    await db.query("ANALYZE deliveries");
    await db.query("ANALYZE events");
    await db.query("ANALYZE subscriptions");
    await db.query(
      `INSERT INTO events (tenant_id, event_type, occurred_at, payload)
       SELECT 't', 'x', now(), '{}'::jsonb FROM generate_series(1, $1::int)`,
      [PENDING],
    );
    await db.query(
      `INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
       SELECT CASE WHEN e.event_id % 2 = 0 THEN $1::text ELSE $2::text END, e.event_id, e.event_id, 'msg_' || e.event_id, 1,
              'pending', now()
       FROM events e`,
      subs,
    );
    await db.query(
      `UPDATE subscriptions s SET next_position = $1::bigint, pending_count = (
         SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.subscription_id)`,
      [PENDING],
    );
  }, 120_000);

  afterAll(async () => {
    await store?.dispose();
  });

  it("a claim reads a few pages, not the queue, and a record of its result too", async () => {
    const first = await claimDue(store.db, { owner: "plan", leaseMs: 60_000, limit: 64 });
    expect(first.deliveries).toHaveLength(64);
    expect(first.deliveries.filter((d) => d.ordering === "ordered")).toHaveLength(1);

    // With 63 rows in flight and the ordered head out, one more claim of one row, and one result.
    const plans: Plan[] = [];
    await claimDue(explaining(store.db, plans), { owner: "plan", leaseMs: 60_000, limit: 1 });
    const d = first.deliveries[0]!;
    await recordResults(explaining(store.db, plans), "plan", [
      {
        delivery_id: d.delivery_id,
        status: "delivered",
        response_status: 200,
        response_body: "",
        error_kind: null,
        error_detail: null,
        latency_ms: 1,
        retry_delay_ms: null,
      },
    ]);
    expect(plans).toHaveLength(2);
    // Reading either queue (25,000 rows, several hundred pages) is what the old plan did on every claim.
    const [claimPlan, recordPlan] = plans as [Plan, Plan];
    expect(pagesRead(claimPlan)).toBeLessThan(200);
    expect(pagesRead(recordPlan)).toBeLessThan(200);
  }, 60_000);
});
