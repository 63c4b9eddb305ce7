import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AcceptGroup } from "../../src/service/accept-group.ts";
import { type AcceptedEvent, acceptWith } from "../../src/service/events.ts";
import type { NewEvent } from "../../src/store/events.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Accepted {
  event_id: number;
  deliveries: number;
  duplicate: boolean;
}

describe.each(STORE_KINDS)("accepting under concurrency (group commit) on the %s store", (kind) => {
  let h: TestHerald;

  beforeAll(async () => {
    h = await startTestHerald(kind);
  });
  afterAll(async () => {
    await h?.close();
  });
  /** An ordered subscription of `tenant` to type "x"; its id. */
  const subscribe = async (tenant: string): Promise<string> => {
    const s = await h.api<{ subscription_id: string }>("POST", "/v1/subscriptions", {
      tenant_id: tenant,
      url: "http://127.0.0.1:9/hook",
      event_types: ["x"],
      ordering: "ordered",
    });
    expect(s.status).toBe(201);
    return s.body.subscription_id;
  };

  it("120 concurrent single events, 20 of them repeating an idempotency key: each answer is its own, positions have no gaps", async () => {
    const subscriptionId = await subscribe("grp");
    // Keys k0..k99 once each, and k0..k19 a second time.
    const keys = [
      ...Array.from({ length: 100 }, (_, i) => `k${i}`),
      ...Array.from({ length: 20 }, (_, i) => `k${i}`),
    ];
    const answers = await Promise.all(
      keys.map((key) =>
        h.api<Accepted>("POST", "/v1/events", {
          tenant_id: "grp",
          event_type: "x",
          idempotency_key: key,
          payload: { key },
        }),
      ),
    );
    const byKey = new Map<string, Array<{ status: number; body: Accepted }>>();
    for (const [i, k] of keys.entries()) byKey.set(k, [...(byKey.get(k) ?? []), answers[i]!]);
    for (const [key, got] of byKey) {
      const ids = new Set(got.map((a) => a.body.event_id));
      expect(ids.size, key).toBe(1);
      expect(
        got.filter((a) => a.status === 202 && !a.body.duplicate),
        key,
      ).toHaveLength(1);
      expect(got.filter((a) => a.body.duplicate).length, key).toBe(got.length - 1);
      for (const a of got.filter((x) => x.body.duplicate)) expect(a.status, key).toBe(200);
    }
    const distinct = new Set(answers.map((a) => a.body.event_id));
    expect(distinct.size).toBe(100);

    const sub = await h.api<{ pending_count: number }>("GET", `/v1/subscriptions/${subscriptionId}`);
    expect(sub.body.pending_count).toBe(100);
    const positions = await h.store.db.query<{ position: number; event_id: number }>(
      "SELECT position, event_id FROM deliveries WHERE subscription_id = $1 ORDER BY position",
      [subscriptionId],
    );
    expect(positions.rows.map((r) => r.position)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(new Set(positions.rows.map((r) => r.event_id))).toEqual(distinct);
  });

  it("a NUL character in a payload or a field is a 400 naming the field, not a 500 (regression)", async () => {
    const one = await h.api<{ error: { message: string } }>("POST", "/v1/events", {
      tenant_id: "nul",
      event_type: "x",
      payload: { note: "a\u0000b" },
    });
    expect(one.status).toBe(400);
    expect(one.body.error.message).toMatch(/^field "payload.note" must not contain the NUL character/);
    const key = await h.api<{ error: { message: string } }>("POST", "/v1/events/batch", {
      events: [
        { tenant_id: "nul", event_type: "x", payload: {} },
        { tenant_id: "nul", event_type: "x", payload: { "k\u0000": 1 } },
      ],
    });
    expect(key.status).toBe(400);
    expect(key.body.error.message).toMatch(/^field "events.1.payload" has a key that must not contain/);
    const field = await h.api<{ error: { message: string } }>("POST", "/v1/events", {
      tenant_id: "nul",
      event_type: "x",
      aggregate_id: "a\u0000",
      payload: {},
    });
    expect(field.status).toBe(400);
    expect(field.body.error.message).toMatch(/^field "aggregate_id" must not contain the NUL character/);
    const events = await h.store.db.query("SELECT 1 FROM events WHERE tenant_id = 'nul'");
    expect(events.rows).toHaveLength(0);
  });

  it("when a shared accept fails, each request of the group is tried alone: only the bad one fails", async () => {
    const groups: number[] = [];
    const group = new AcceptGroup<AcceptedEvent>(
      h.store.db,
      async (tx, events) => {
        groups.push(events.length);
        if (events.some((e) => e.event_type === "poison")) throw new Error("poisoned request");
        return acceptWith(tx, events);
      },
      () => {},
    );
    const ev = (i: number, type = "x"): NewEvent => ({
      tenant_id: "grp-fail",
      event_type: type,
      aggregate_id: null,
      occurred_at: new Date(),
      payload: { i },
      idempotency_key: null,
      source_txn_id: null,
    });
    // Submitted together: two start at once (two lanes), the other eight wait and go as one group.
    const settled = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => group.submit([ev(i, i === 5 ? "poison" : "x")])),
    );
    expect(groups.some((n) => n > 1)).toBe(true);
    expect(settled[5]!.status).toBe("rejected");
    const ok = settled.filter((r): r is PromiseFulfilledResult<AcceptedEvent[]> => r.status === "fulfilled");
    expect(ok).toHaveLength(9);
    const ids = ok.map((r) => r.value[0]!.event_id);
    expect(new Set(ids).size).toBe(9);
    const stored = await h.store.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE tenant_id = 'grp-fail'",
    );
    expect(stored.rows[0]!.n).toBe(9);
  });

  it("a trigger that throws after the commit neither fails the requests nor stores their events twice", async () => {
    let triggers = 0;
    const group = new AcceptGroup<AcceptedEvent>(
      h.store.db,
      (tx, events) => acceptWith(tx, events),
      () => {
        triggers += 1;
        throw new Error("trigger bug");
      },
    );
    const ev = (i: number): NewEvent => ({
      tenant_id: "grp-trigger",
      event_type: "x",
      aggregate_id: null,
      occurred_at: new Date(),
      payload: { i },
      idempotency_key: null,
      source_txn_id: null,
    });
    // Two go alone (two lanes), the other eight as one group: every commit's trigger throws.
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => group.submit([ev(i)])));
    expect(triggers).toBeGreaterThanOrEqual(2);
    expect(new Set(answers.map((a) => a[0]!.event_id)).size).toBe(10);
    const stored = await h.store.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE tenant_id = 'grp-trigger'",
    );
    expect(stored.rows[0]!.n).toBe(10);
  });

  // PostgreSQL only: the embedded store has one session, where no two transactions can deadlock.
  if (kind === "postgres") {
    it("an accept that loses a deadlock is tried again: the event is accepted once, with its deliveries", async () => {
      const ids = [await subscribe("deadlock"), await subscribe("deadlock")];
      const [low, high] = ids.sort();
      // Another transaction holds the second subscription's row; the accept locks the first and waits.
      const other = new pg.Client({ connectionString: h.store.databaseUrl ?? "" });
      await other.connect();
      try {
        // This session waits longer before checking for a deadlock, so the accept is the one cancelled.
        await other.query("SET deadlock_timeout = '30s'");
        await other.query("BEGIN");
        await other.query("SELECT 1 FROM subscriptions WHERE subscription_id = $1 FOR UPDATE", [high]);
        const accepting = h.api<Accepted>("POST", "/v1/events", {
          tenant_id: "deadlock",
          event_type: "x",
          payload: { n: 1 },
        });
        await eventually(
          async () => {
            // A session waiting for this transaction: the accept, on the row this transaction holds.
            const r = await other.query(
              `SELECT 1 FROM pg_locks w
             WHERE w.locktype = 'transactionid' AND NOT w.granted AND w.transactionid = (
               SELECT transactionid FROM pg_locks
               WHERE pid = pg_backend_pid() AND locktype = 'transactionid' AND granted)`,
            );
            return (r.rowCount ?? 0) > 0;
          },
          20_000,
          "the accept waiting for the second subscription's row",
        );
        // Now the cycle: this transaction asks for the row the accept holds. PostgreSQL cancels the accept
        // (40P01), this lock is granted, and the accept runs again after this commit.
        await other.query("SELECT 1 FROM subscriptions WHERE subscription_id = $1 FOR UPDATE", [low]);
        await other.query("COMMIT");
        const r = await accepting;
        expect(r.status).toBe(202);
        expect(r.body).toMatchObject({ deliveries: 2, duplicate: false });
      } finally {
        await other.end();
      }
      const events = await h.store.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM events WHERE tenant_id = 'deadlock'",
      );
      expect(events.rows[0]!.n).toBe(1);
      const rows = await h.store.db.query<{ subscription_id: string; position: number }>(
        "SELECT subscription_id, position FROM deliveries WHERE subscription_id = ANY($1) ORDER BY subscription_id",
        [ids],
      );
      expect(rows.rows).toEqual([
        { subscription_id: low, position: 1 },
        { subscription_id: high, position: 1 },
      ]);
    });
  }
});
