import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimDue, queuesReady } from "../../src/store/claim.ts";
import type { Db, QueryResult } from "../../src/store/db.ts";
import { recordResults } from "../../src/store/record.ts";
import { eventually } from "../support/receiver.ts";
import { createTestStore, deliveredResult, type TestStore } from "../support/store.ts";

/**
 * On PostgreSQL the dispatcher's named statements (claim, record, the look-ups for work) run in sessions
 * that plan each statement once and keep that generic plan (src/store/pg-db.ts). A generic plan cannot see
 * its parameters: it guesses 100 elements for an array and a tenth of the rows for `LIMIT $n`. Here every
 * named statement runs under `plan_cache_mode = force_generic_plan` with auto_explain reporting the plan it
 * actually executed, once with tables never analyzed (a fresh install) and once analyzed, with 20,000 rows
 * queued; each must reach `deliveries` and `events` only through index conditions and read under 1,000
 * pages (the first generic claim hash-joined a sequential scan of `deliveries`).
 */
const UNORDERED = 20_000;
const url = process.env.DATABASE_URL;

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Index Cond"?: string;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  Plans?: PlanNode[];
}

/** Tables a dispatch statement must only reach through an index condition (they hold every queued row). */
const BIG = new Set(["deliveries", "events"]);

/**
 * The reads of `deliveries` and `events` in a plan that are not bounded by an index condition: a
 * sequential scan, or an index read whole (a partial index picked for its predicate alone).
 */
function unboundedReads(node: PlanNode, found: string[] = []): string[] {
  const type = node["Node Type"];
  if (type === "Seq Scan" && BIG.has(node["Relation Name"] ?? ""))
    found.push(`Seq Scan on ${node["Relation Name"]}`);
  const index = node["Index Name"] ?? "";
  // The in-flight index holds only rows out on a POST (bounded by concurrency): reading it whole is bounded.
  if (
    /Index/.test(type) &&
    /^(deliveries|events)_/.test(index) &&
    index !== "deliveries_in_flight" &&
    !node["Index Cond"]
  ) {
    found.push(`${type} on ${node["Index Name"]} without a condition`);
  }
  for (const child of node.Plans ?? []) unboundedReads(child, found);
  return found;
}

type Seen = { name: string; pages: number; unbounded: string[] };

/**
 * Two layouts: one unordered queue holding every row (the planner then expects a claim to take a tenth of
 * them: the first generic claim hash-joined a sequential scan of `deliveries` here), and 200 ordered queues
 * besides it (heads, readiness, the main loop's walk).
 */
describe.skipIf(!url).each([
  { layout: "one unordered queue", orderedQueues: 0 },
  { layout: "an unordered queue and 200 ordered ones", orderedQueues: 200 },
])("generic plans of the dispatch statements on postgres, $layout", ({ orderedQueues }) => {
  let store: TestStore;
  let client: pg.Client;
  /** What each named statement's executed plan read, in the order they ran. */
  const seen: Seen[] = [];
  let current = "";
  let db: Db;
  const ordered = Array.from({ length: orderedQueues }, (_, i) => `sub_g_${String(i).padStart(3, "0")}`);

  beforeAll(async () => {
    store = await createTestStore("postgres");
    for (const t of ["deliveries", "events", "subscriptions"]) {
      await store.db.query(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`);
    }
    await store.db.query(
      `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling,
                                  dlq_ceiling, max_in_flight, secret, pending_count, next_position)
       SELECT id, 't', 'http://127.0.0.1:9/o', '{x}'::text[], 'ordered', 1000, 1000, 1, 'whsec_x', 2, 2
       FROM unnest($1::text[]) id
       UNION ALL
       SELECT 'sub_g_unordered', 't', 'http://127.0.0.1:9/u', '{x}'::text[], 'unordered', 1000000, 1000, 1000,
              'whsec_x', $2::int, $2::int`,
      [ordered, UNORDERED],
    );
    await store.db.query(
      `INSERT INTO events (tenant_id, event_type, occurred_at, payload)
       SELECT 't', 'x', now(), '{"n": 1}'::jsonb FROM generate_series(1, $1::int)`,
      [UNORDERED + orderedQueues * 2],
    );
    await store.db.query(
      `INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
       SELECT CASE WHEN e.event_id <= $2 THEN ($1::text[])[(e.event_id - 1) % $3 + 1] ELSE 'sub_g_unordered' END,
              e.event_id, e.event_id, 'msg_' || e.event_id, 1, 'pending', now()
       FROM events e`,
      [ordered, orderedQueues * 2, Math.max(orderedQueues, 1)],
    );
    client = new pg.Client({ connectionString: store.databaseUrl ?? "" });
    await client.connect();
    await client.query("SET plan_cache_mode = force_generic_plan");
    await client.query("LOAD 'auto_explain'");
    for (const setting of [
      "auto_explain.log_min_duration = 0",
      "auto_explain.log_analyze = on",
      "auto_explain.log_buffers = on",
      "auto_explain.log_timing = off",
      "auto_explain.log_format = json",
      "auto_explain.log_level = notice",
    ]) {
      await client.query(`SET ${setting}`);
    }
    client.on("notice", (n) => {
      const text = n.message ?? "";
      const at = text.indexOf("{");
      if (!current || at < 0) return;
      const doc = JSON.parse(text.slice(at)) as { Plan: PlanNode };
      seen.push({
        name: current,
        pages: doc.Plan["Shared Hit Blocks"] + doc.Plan["Shared Read Blocks"],
        unbounded: unboundedReads(doc.Plan),
      });
    });
    // Named statements run explained on the generic-plan session; anything else on the test's own pool.
    db = {
      ...store.db,
      async query<R>(
        sql: string,
        params?: readonly unknown[],
        opts?: { name?: string },
      ): Promise<QueryResult<R>> {
        if (!opts?.name) return store.db.query<R>(sql, params);
        current = opts.name;
        try {
          const r = await client.query({ name: opts.name, text: sql, values: params as unknown[] });
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        } finally {
          current = "";
        }
      },
    };
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await store?.dispose();
  });

  /**
   * Claims from the unordered queue and (with ordered queues) a window of heads, asks which queues are
   * ready, records results and walks the queues with work as the main loop does. `base`: the first ordered
   * queue this round uses. Returns what every statement read.
   */
  async function dispatchRound(owner: string, base: number): Promise<Seen[]> {
    seen.length = 0;
    const claimed = await claimDue(db, {
      owner,
      leaseMs: 60_000,
      limit: 21,
      subscriptionIds: ["sub_g_unordered"],
    });
    expect(claimed.deliveries).toHaveLength(21);
    if (orderedQueues > 0) {
      const window = ordered.slice(base, base + 20);
      const heads = await claimDue(db, { owner, leaseMs: 60_000, limit: 20, subscriptionIds: window });
      expect(heads.deliveries).toHaveLength(20);
      expect(await queuesReady(db, ordered.slice(base + 20, base + 40))).toHaveLength(20);
    }
    const summary = await recordResults(
      db,
      owner,
      claimed.deliveries.slice(0, 10).map((d) => deliveredResult(d.delivery_id)),
    );
    expect(summary.recorded).toBe(10);
    // The main loop's walk: which subscriptions have work, then a claim over them.
    const walk = await claimDue(db, {
      owner,
      leaseMs: 60_000,
      limit: 10,
      subscriptionLimit: 16,
      after: ordered[base + 40] ?? null,
    });
    expect(walk.deliveries).toHaveLength(10);
    return [...seen];
  }

  function expectBounded(statements: Seen[]) {
    expect(statements.map((p) => p.name).sort()).toEqual(
      [
        "herald_claim",
        "herald_claim",
        "herald_record",
        "herald_with_work",
        ...(orderedQueues > 0 ? ["herald_claim", "herald_queues_ready"] : []),
      ].sort(),
    );
    for (const p of statements) {
      expect(p.unbounded, p.name).toEqual([]);
      // A claim of 20 rows writes about 400 pages (a new version of each row and its index entries).
      expect(p.pages, p.name).toBeLessThan(1000);
    }
  }

  it("read only what they take on tables never analyzed", async () => {
    expectBounded(await dispatchRound("fresh", 0));
  }, 60_000);

  it("read only what they take after ANALYZE (the plans are made again)", async () => {
    await store.db.query("ANALYZE deliveries");
    await store.db.query("ANALYZE events");
    await store.db.query("ANALYZE subscriptions");
    expectBounded(await dispatchRound("analyzed", 100));
  }, 60_000);

  it("Herald's own pool runs them on generic plans", async () => {
    for (let i = 0; i < 3; i++) {
      await claimDue(store.db, {
        owner: "pool",
        leaseMs: 60_000,
        limit: 5,
        subscriptionIds: ["sub_g_unordered"],
      });
    }
    // Run one at a time, the named statements share one session of the pool, and this one reads its plans.
    const r = await store.db.query<{ name: string; generic_plans: number; custom_plans: number }>(
      "SELECT name, generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE name = 'herald_claim'",
      [],
      { name: "test_prepared_statements" },
    );
    expect(r.rows).toEqual([{ name: "herald_claim", generic_plans: 3, custom_plans: 0 }]);
  }, 60_000);

  it("a session the server ends is replaced by one that keeps generic plans too", async () => {
    const backend = () =>
      store.db
        .query<{ pid: number; mode: string }>(
          "SELECT pg_backend_pid() AS pid, current_setting('plan_cache_mode') AS mode",
          [],
          { name: "test_backend" },
        )
        .then((r) => r.rows[0]!);
    const lost = await backend();
    expect(lost.mode).toBe("force_generic_plan");
    await store.db.query("SELECT pg_terminate_backend($1)", [lost.pid]);
    // The pool hears of the lost session when its socket closes; a query may meet the dead session first.
    const next = await eventually(
      () =>
        backend()
          .then((b) => (b.pid !== lost.pid ? b : undefined))
          .catch(() => undefined),
      10_000,
      "a new named-statement session",
    );
    expect(next.mode).toBe("force_generic_plan");
    // One-off statements keep PostgreSQL's own choice.
    const plain = await store.db.query<{ mode: string }>("SELECT current_setting('plan_cache_mode') AS mode");
    expect(plain.rows).toEqual([{ mode: "auto" }]);
  }, 60_000);
});
