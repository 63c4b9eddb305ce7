import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimDue } from "../../src/store/claim.ts";
import type { Db } from "../../src/store/db.ts";
import { sqlState } from "../../src/store/db.ts";
import { createEmbeddedDb } from "../../src/store/embedded-db.ts";
import { migrate } from "../../src/store/migrate.ts";

/**
 * The embedded store runs named statements prepared in its one session, on a generic plan
 * (src/store/embedded-prepared.ts). They must answer exactly what the same statement answers unnamed,
 * leave the session's planning of everything else alone, and wait for another caller's transaction.
 */
describe("named statements on the embedded store", () => {
  let db: Db;

  beforeAll(async () => {
    db = await createEmbeddedDb(null);
    await migrate(db);
  }, 120_000);

  afterAll(async () => {
    await db?.close();
  });

  it("answer what the same statement answers unnamed: numbers, dates, JSON, arrays, nulls", async () => {
    const sql = `SELECT $1::bigint AS id, $2::timestamptz AS at, $3::jsonb AS doc, $4::text[] AS tags,
                        $5::text AS missing, $6::int AS n, $7::boolean AS yes`;
    const params = [
      9_007_199_254_740,
      new Date("2026-11-24T12:00:00.123Z"),
      JSON.stringify({ a: [1, "two", null] }),
      ["x", "y,z", 'q"uote'],
      null,
      42,
      true,
    ];
    const unnamed = await db.query(sql, params);
    const named = await db.query(sql, params, { name: "test_roundtrip" });
    expect(named.rows).toEqual(unnamed.rows);
    expect(named.rows[0]).toEqual({
      id: 9_007_199_254_740,
      at: new Date("2026-11-24T12:00:00.123Z"),
      doc: { a: [1, "two", null] },
      tags: ["x", "y,z", 'q"uote'],
      missing: null,
      n: 42,
      yes: true,
    });
    // A second run reuses the prepared statement with other values.
    const again = await db.query<{ n: number }>(sql, [1, null, null, [], null, 7, false], {
      name: "test_roundtrip",
    });
    expect(again.rows[0]?.n).toBe(7);
  });

  it("run the claim on one generic plan and leave the session's plan_cache_mode as it was", async () => {
    await db.query(
      `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling,
                                  dlq_ceiling, max_in_flight, secret, pending_count)
       VALUES ('sub_prep', 't', 'http://127.0.0.1:9/u', '{x}', 'unordered', 1000, 1000, 1000, 'whsec_x', 30)`,
    );
    await db.query(
      `INSERT INTO events (tenant_id, event_type, occurred_at, payload)
       SELECT 't', 'x', now(), jsonb_build_object('n', g) FROM generate_series(1, 30) g`,
    );
    await db.query(
      `INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
       SELECT 'sub_prep', e.event_id, e.event_id, 'msg_' || e.event_id, 1, 'pending', now() FROM events e`,
    );
    const claimed = [];
    for (let i = 0; i < 3; i++) {
      const c = await claimDue(db, {
        owner: "prep",
        leaseMs: 60_000,
        limit: 10,
        subscriptionIds: ["sub_prep"],
      });
      claimed.push(...c.deliveries);
    }
    expect(claimed.map((d) => d.payload)).toEqual(Array.from({ length: 30 }, (_, i) => ({ n: i + 1 })));
    expect(claimed[0]?.occurred_at).toBeInstanceOf(Date);
    expect(typeof claimed[0]?.delivery_id).toBe("number");
    const plans = await db.query<{ generic_plans: number; custom_plans: number }>(
      "SELECT generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE name = 'herald_claim'",
    );
    expect(plans.rows).toEqual([{ generic_plans: 3, custom_plans: 0 }]);
    const mode = await db.query<{ plan_cache_mode: string }>("SHOW plan_cache_mode");
    expect(mode.rows[0]?.plan_cache_mode).toBe("auto");
  });

  it("throw a failed statement's error with its SQLSTATE, and the session goes on as before", async () => {
    const err = await db
      .query("SELECT 1 / $1::int AS x", [0], { name: "test_failure" })
      .then(() => null)
      .catch((e: unknown) => e);
    expect(sqlState(err)).toBe("22012");
    expect((err as Error).message).toMatch(/division by zero/);
    // Left in the failed transaction, this would be refused ("current transaction is aborted").
    const mode = await db.query<{ plan_cache_mode: string }>("SHOW plan_cache_mode");
    expect(mode.rows).toEqual([{ plan_cache_mode: "auto" }]);
    expect(
      (await db.query<{ x: number }>("SELECT 1 / $1::int AS x", [1], { name: "test_failure" })).rows,
    ).toEqual([{ x: 1 }]);
  });

  it("wait for another caller's transaction instead of running inside it", async () => {
    await db.query("CREATE TABLE prep_probe (n int)");
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let probe: Promise<number> | null = null;
    const tx = db
      .transaction(async (t) => {
        await t.query("INSERT INTO prep_probe VALUES (1)");
        entered();
        // The named count is asked while this transaction holds the session; then the transaction fails.
        probe = db
          .query<{ n: number }>("SELECT count(*)::int AS n FROM prep_probe", [], { name: "test_probe" })
          .then((r) => r.rows[0]?.n ?? -1);
        await t.query("SELECT 1");
        throw new Error("roll back");
      })
      .catch((e: Error) => e.message);
    await inside;
    expect(await tx).toBe("roll back");
    // Run inside the transaction it would have seen the row the rollback removed.
    expect(await probe).toBe(0);
  });
});
