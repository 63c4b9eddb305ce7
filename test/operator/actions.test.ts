import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countDeliveries } from "../../src/store/subscriptions.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
  status: string;
  pending_count: number;
  dlq_count: number;
}
interface Delivery {
  delivery_id: number;
  event_id: number;
  attempt_number: number;
  status: string;
  webhook_id: string;
  replay_of: number | null;
  replayed_at: string | null;
}
interface Err {
  error: { code: string; message: string };
}

describe.each(STORE_KINDS)("operator actions on the %s store", (kind) => {
  let h: TestHerald;
  let rx: Receiver;
  beforeAll(async () => {
    h = await startTestHerald(
      kind,
      { retryScheduleMs: [20], schedulerIntervalMs: 200, requestTimeoutMs: 60_000, leaseMs: 300_000 },
      { api: true, dispatcher: true },
    );
    rx = await new Receiver().start();
  });
  afterAll(async () => {
    await h?.close();
    await rx?.close();
  });

  const subscribe = async (tenant: string, body: Record<string, unknown> = {}) => {
    const r = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: tenant,
      url: rx.url(`/${tenant}`),
      event_types: ["*"],
      ...body,
    });
    expect(r.status).toBe(201);
    rx.trust(r.body.secret);
    return r.body;
  };
  const byPath = (tenant: string) => rx.received.filter((r) => r.path === `/${tenant}`);

  it("replays one delivery as a fresh attempt 1 with the same webhook-id", async () => {
    const s = await subscribe("ra");
    const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "ra",
      event_type: "x",
      payload: { v: 1 },
    });
    await rx.waitFor(() => byPath("ra").length === 1);
    const rows = await eventually(async () => {
      const r = await h.api<{ items: Delivery[] }>(
        "GET",
        `/v1/deliveries?subscription_id=${s.subscription_id}&status=delivered`,
      );
      return r.body.items.length === 1 ? r.body.items : undefined;
    });
    const replay = await h.api<{ delivery_id: number; webhook_id: string }>(
      "POST",
      `/v1/deliveries/${rows[0]!.delivery_id}/replay`,
    );
    expect(replay.status).toBe(202);
    expect(replay.body.webhook_id).toBe(rows[0]!.webhook_id);
    await rx.waitFor(() => byPath("ra").length === 2);
    expect(byPath("ra")[1]!.webhookId).toBe(byPath("ra")[0]!.webhookId);
    const all = await h.api<{ items: Delivery[] }>("GET", `/v1/deliveries?event_id=${ev.body.event_id}`);
    expect(all.body.items.find((d) => d.delivery_id === replay.body.delivery_id)).toMatchObject({
      attempt_number: 1,
      replay_of: rows[0]!.delivery_id,
    });
    const unknown = await h.api<Err>("POST", "/v1/deliveries/99999999/replay");
    expect(unknown.status).toBe(404);
  });

  it("fix and replay: the corrected payload is sent and the old one is kept in the audit log", async () => {
    rx.behaviour = (r) =>
      r.path === "/rp" && (r.body.data as { ok?: boolean }).ok !== true ? { status: 422 } : { status: 200 };
    const s = await subscribe("rp", { ordering: "ordered" });
    const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "rp",
      event_type: "x",
      payload: { ok: false },
    });
    // Two attempts (schedule of one delay), both rejected: the event lands in the DLQ.
    await eventually(async () => {
      const v = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
      return v.body.dlq_count === 1;
    });
    const fix = await h.api<{ replayed: string[] }>("POST", `/v1/events/${ev.body.event_id}/repair`, {
      payload: { ok: true },
      reason: "missing flag",
    });
    expect(fix.status).toBe(200);
    expect(fix.body.replayed).toEqual([s.subscription_id]);
    await rx.waitFor(() => byPath("rp").some((r) => (r.body.data as { ok: boolean }).ok === true));
    const audit = await h.api<{
      items: Array<{ action: string; before: { payload: unknown }; after: { payload: unknown } }>;
    }>("GET", "/v1/audit?limit=20");
    const repaired = audit.body.items.find((a) => a.action === "event.repaired");
    expect(repaired).toMatchObject({ before: { payload: { ok: false } }, after: { payload: { ok: true } } });
    rx.behaviour = () => ({ status: 200 });
  });

  it("refuses to drop the head of an unordered or empty queue, and hides other tenants' queues", async () => {
    const u = await subscribe("du");
    const r = await h.api<Err>("POST", `/v1/subscriptions/${u.subscription_id}/head/drop`, { reason: "x" });
    expect(r.status).toBe(409);
    const o = await subscribe("do", { ordering: "ordered" });
    const empty = await h.api<Err>("POST", `/v1/subscriptions/${o.subscription_id}/head/drop`, {
      reason: "x",
    });
    expect(empty.status).toBe(409);
    expect(empty.body.error.message).toContain("empty");
    const noReason = await h.api<Err>("POST", `/v1/subscriptions/${o.subscription_id}/head/drop`, {});
    expect(noReason.status).toBe(400);
    expect(noReason.body.error.message).toContain("reason");

    const tok = await h.api<{ token: string }>("POST", "/v1/tokens", { tenant_id: "someone-else" });
    for (const path of [`/v1/subscriptions/${o.subscription_id}/head`]) {
      expect((await h.api("GET", path, undefined, tok.body.token)).status).toBe(404);
    }
    expect(
      (
        await h.api(
          "POST",
          `/v1/subscriptions/${o.subscription_id}/head/drop`,
          { reason: "x" },
          tok.body.token,
        )
      ).status,
    ).toBe(404);
    expect(
      (await h.api("POST", `/v1/subscriptions/${o.subscription_id}/dlq/replay`, {}, tok.body.token)).status,
    ).toBe(404);
    const list = await h.api<{ items: Delivery[] }>("GET", "/v1/deliveries", undefined, tok.body.token);
    expect(list.body.items).toEqual([]);
  });

  it("keeps pending_count and dlq_count equal to the rows after a randomized concurrent workload", {
    timeout: 180_000,
  }, async () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    rx.behaviour = (r) => (r.path.startsWith("/w") && rand() < 0.3 ? { status: 500 } : { status: 200 });
    const subs = [
      await subscribe("w1", { ordering: "ordered", pending_ceiling: 100 }),
      await subscribe("w2", { ordering: "unordered", max_in_flight: 4 }),
      await subscribe("w3", { ordering: "ordered" }),
    ];
    const tenants = ["w1", "w2", "w3"];
    await Promise.all(
      Array.from({ length: 6 }, async (_, c) => {
        for (let i = 0; i < 30; i++) {
          const t = tenants[(c + i) % 3]!;
          const r = await h.api("POST", "/v1/events", { tenant_id: t, event_type: "x", payload: { c, i } });
          expect(r.status).toBe(202);
          if (i % 13 === 5) {
            const s = subs[(c + i) % 3]!;
            await h.api("PATCH", `/v1/subscriptions/${s.subscription_id}`, {
              status: i % 2 ? "paused" : "active",
            });
          }
          if (i % 17 === 3)
            await h.api("POST", `/v1/subscriptions/${subs[0]!.subscription_id}/dlq/replay`, {});
          if (c === 0 && i % 5 === 0) {
            // Mid-flight, in one snapshot: the maintained counters equal the rows.
            const snap = await h.store.db.query<{
              id: string;
              pc: number;
              pr: number;
              dc: number;
              dr: number;
            }>(
              `SELECT s.subscription_id AS id, s.pending_count AS pc, s.dlq_count AS dc,
                      (SELECT count(*)::int FROM deliveries d WHERE d.subscription_id = s.subscription_id
                         AND d.status IN ('pending', 'in_flight')) AS pr,
                      (SELECT count(*)::int FROM deliveries d WHERE d.subscription_id = s.subscription_id
                         AND d.status = 'dlq' AND d.replayed_at IS NULL) AS dr
               FROM subscriptions s WHERE s.tenant_id IN ('w1', 'w2', 'w3')`,
            );
            for (const row of snap.rows) {
              expect(row.pc, row.id).toBe(row.pr);
              expect(row.dc, row.id).toBe(row.dr);
            }
          }
        }
      }),
    );
    for (const s of subs)
      await h.api("PATCH", `/v1/subscriptions/${s.subscription_id}`, { status: "active" });
    rx.behaviour = () => ({ status: 200 });
    await eventually(
      async () => {
        for (const s of subs) {
          const v = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
          if (v.body.status === "paused")
            await h.api("PATCH", `/v1/subscriptions/${s.subscription_id}`, { status: "active" });
          if (v.body.pending_count !== 0) return false;
        }
        return true;
      },
      150_000,
      "queues drained",
    );
    for (const s of subs) {
      const real = await countDeliveries(h.store.db, s.subscription_id);
      const v = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
      expect(v.body.pending_count).toBe(real.pending + real.in_flight);
      expect(v.body.dlq_count).toBe(real.dlq);
    }
  });
});
