import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually } from "../support/receiver.ts";

/**
 * A new deployment's tables grow from empty faster than autovacuum looks (once a minute). Planned
 * without statistics, the unordered claim once chose the queue-head index and sorted every pending row
 * on each call: a benchmark run fell from about 6,000 to 1,800 deliveries/s, its claims at 40 ms each
 * (bench/HISTORY.md, fourth round). A dispatcher process now analyzes a table that changed a lot within
 * seconds. Autovacuum is switched off for this schema's tables so that only Herald can have analyzed them.
 */
describe.skipIf(!process.env.DATABASE_URL)("planner statistics (postgres store)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald(
      "postgres",
      // The scheduler's own pass (which also refreshes statistics) a minute away.
      { schedulerIntervalMs: 60_000, controlRefreshMs: 60_000 },
      { api: true, dispatcher: true },
    );
    for (const table of ["events", "deliveries"]) {
      await h.store.db.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  const lastAnalyze = async (table: string): Promise<Date | null> => {
    const r = await h.store.db.query<{ last_analyze: Date | null }>(
      `SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = $1`,
      [table],
    );
    return r.rows[0]?.last_analyze ?? null;
  };

  it("analyzes deliveries and events within seconds once thousands of rows arrive", async () => {
    const sub = await h.api<{ subscription_id: string }>("POST", "/v1/subscriptions", {
      tenant_id: "stats",
      url: "http://127.0.0.1:9/hook",
      event_types: ["*"],
    });
    expect(sub.status).toBe(201);
    // Paused: the rows stay pending, as a backlog does; nothing is sent.
    const paused = await h.api("PATCH", `/v1/subscriptions/${sub.body.subscription_id}`, {
      status: "paused",
    });
    expect(paused.status).toBe(200);
    const before = { events: await lastAnalyze("events"), deliveries: await lastAnalyze("deliveries") };

    for (let batch = 0; batch < 3; batch++) {
      const events = Array.from({ length: 1000 }, (_, i) => ({
        tenant_id: "stats",
        event_type: "grown",
        payload: { n: batch * 1000 + i },
      }));
      const r = await h.api("POST", "/v1/events/batch", { events });
      expect(r.status).toBe(202);
    }

    await eventually(
      async () => {
        const [events, deliveries] = [await lastAnalyze("events"), await lastAnalyze("deliveries")];
        return (
          events !== null &&
          deliveries !== null &&
          (before.events === null || events > before.events) &&
          (before.deliveries === null || deliveries > before.deliveries)
        );
      },
      30_000,
      "both tables analyzed by Herald",
    );
    const planned = await h.store.db.query<{ reltuples: number }>(
      "SELECT reltuples FROM pg_class WHERE oid = 'deliveries'::regclass",
    );
    expect(planned.rows[0]?.reltuples).toBeGreaterThanOrEqual(2000);
  });
});
