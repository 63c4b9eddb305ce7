import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
  status: string;
  pause_reason: string | null;
  pending_count: number;
  dlq_count: number;
  last_delivered_event_id: number | null;
}
interface Head {
  head: {
    event: { event_id: number; payload: { n: number } };
    attempts: Array<{ status: string; error_kind: string; response_status: number }>;
  } | null;
  counts: { pending: number; dlq: number };
  diagnosis: { branch: string; summary: string; actions: string[] };
}
interface Audit {
  items: Array<{ actor: string; action: string; reason: string | null; after: Record<string, unknown> }>;
}

describe.each(STORE_KINDS)("the stuck-queue runbook on the %s store", (kind) => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald(
      kind,
      // The head's second attempt would come a minute later: long enough to stay stuck during the test.
      { retryScheduleMs: [60_000], schedulerIntervalMs: 300, requestTimeoutMs: 60_000, leaseMs: 300_000 },
      { api: true, dispatcher: true },
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  it("poisoned head: auto-pause at the 100th insert, diagnosis head_rejected, drop head + resume delivers 2..150 in order", async () => {
    const rx = await new Receiver().start();
    try {
      const s = await h.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: "rb",
        url: rx.url(),
        event_types: ["contract.executed"],
        ordering: "ordered",
        pending_ceiling: 100,
      });
      rx.trust(s.body.secret);
      const id = s.body.subscription_id;
      // The consumer rejects only event #1.
      rx.behaviour = (r) =>
        (r.body.data as { n: number }).n === 1 ? { status: 400, body: "bad contract" } : { status: 200 };
      const first = await h.api<{ event_id: number }>("POST", "/v1/events", {
        tenant_id: "rb",
        event_type: "contract.executed",
        payload: { n: 1 },
      });
      await rx.waitFor((r) => r.length === 1, 20_000, "the head's first attempt");
      // 149 more from 8 concurrent clients.
      let next = 2;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (;;) {
            const n = next++;
            if (n > 150) return;
            const r = await h.api("POST", "/v1/events", {
              tenant_id: "rb",
              event_type: "contract.executed",
              payload: { n },
            });
            expect(r.status).toBe(202);
          }
        }),
      );
      const paused = await h.api<Sub>("GET", `/v1/subscriptions/${id}`);
      expect(paused.body).toMatchObject({
        status: "paused",
        pause_reason: "pending_ceiling",
        pending_count: 150,
        dlq_count: 0,
      });
      const audit = await h.api<Audit>("GET", `/v1/audit?subscription_id=${id}`);
      const auto = audit.body.items.filter((a) => a.action === "subscription.paused");
      expect(auto).toHaveLength(1);
      expect(auto[0]).toMatchObject({
        actor: "system",
        after: { pause_reason: "pending_ceiling", pending_count: 100 },
      });

      const head = await h.api<Head>("GET", `/v1/subscriptions/${id}/head`);
      expect(head.body.head?.event.event_id).toBe(first.body.event_id);
      expect(head.body.head?.attempts[0]).toMatchObject({
        status: "failed",
        error_kind: "4xx",
        response_status: 400,
      });
      expect(head.body.diagnosis.branch).toBe("head_rejected");
      expect(head.body.counts.dlq).toBe(0);

      // A stale drop (wrong expected head) is refused and changes nothing.
      const stale = await h.api<{ error: { code: string } }>("POST", `/v1/subscriptions/${id}/head/drop`, {
        reason: "x",
        event_id: first.body.event_id + 1,
      });
      expect(stale.status).toBe(409);
      const drop = await h.api<{ event_id: number }>("POST", `/v1/subscriptions/${id}/head/drop`, {
        reason: "contract c-1 is corrupt, ticket OPS-7",
        event_id: first.body.event_id,
      });
      expect(drop.status).toBe(200);
      expect(
        (await h.api("PATCH", `/v1/subscriptions/${id}`, { status: "active", reason: "head dropped" }))
          .status,
      ).toBe(200);

      await rx.waitFor((r) => r.length === 150, 60_000, "events 2..150");
      // In queue order (the order the concurrent producers' transactions committed).
      const queueOrder = await h.store.db.query<{ n: number }>(
        `SELECT (e.payload->>'n')::int AS n FROM deliveries d JOIN events e USING (event_id)
         WHERE d.subscription_id = $1 AND d.attempt_number = 1 AND e.event_id <> $2 ORDER BY d.position`,
        [id, first.body.event_id],
      );
      expect(rx.received.slice(1).map((r) => (r.body.data as { n: number }).n)).toEqual(
        queueOrder.rows.map((r) => r.n),
      );
      expect(new Set(queueOrder.rows.map((r) => r.n)).size).toBe(149);
      const done = await eventually(async () => {
        const v = await h.api<Sub>("GET", `/v1/subscriptions/${id}`);
        return v.body.pending_count === 0 ? v.body : undefined;
      });
      expect(done).toMatchObject({ status: "active", dlq_count: 1 });
      const dlq = await h.api<{ items: Array<{ event_id: number; error_detail: string }> }>(
        "GET",
        `/v1/deliveries?subscription_id=${id}&status=dlq`,
      );
      expect(dlq.body.items).toHaveLength(1);
      expect(dlq.body.items[0]).toMatchObject({
        event_id: first.body.event_id,
        error_detail: "operator drop: contract c-1 is corrupt, ticket OPS-7",
      });
      const trail = await h.api<Audit>("GET", `/v1/audit?subscription_id=${id}`);
      expect(trail.body.items.map((a) => a.action).slice(0, 3)).toEqual([
        "subscription.resumed",
        "subscription.head_dropped",
        "subscription.paused",
      ]);
    } finally {
      await rx.close();
    }
  });

  it("DLQ ceiling: the delivery that fills the DLQ pauses the subscription; later events stay queued", async () => {
    const rx = await new Receiver().start();
    const fast = await startTestHerald(
      kind,
      { retryScheduleMs: [1], schedulerIntervalMs: 100, requestTimeoutMs: 60_000, leaseMs: 300_000 },
      { api: true, dispatcher: true },
    );
    try {
      rx.behaviour = () => ({ status: 503 });
      const s = await fast.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: "dq",
        url: rx.url(),
        event_types: ["*"],
        ordering: "ordered",
        dlq_ceiling: 100,
      });
      rx.trust(s.body.secret);
      const id = s.body.subscription_id;
      const events = Array.from({ length: 120 }, (_, n) => ({
        tenant_id: "dq",
        event_type: "x",
        payload: { n },
      }));
      expect((await fast.api("POST", "/v1/events/batch", { events })).status).toBe(202);
      const sub = await eventually(async () => {
        const v = await fast.api<Sub>("GET", `/v1/subscriptions/${id}`);
        return v.body.status === "paused" ? v.body : undefined;
      }, 60_000);
      expect(sub).toMatchObject({ pause_reason: "dlq_ceiling", dlq_count: 100, pending_count: 20 });
      const head = await fast.api<Head>("GET", `/v1/subscriptions/${id}/head`);
      expect(head.body.diagnosis.branch).toBe("head_terminated");
      const audit = await fast.api<Audit>("GET", `/v1/audit?subscription_id=${id}`);
      expect(audit.body.items[0]).toMatchObject({
        actor: "system",
        action: "subscription.paused",
        after: { pause_reason: "dlq_ceiling" },
      });

      // Replay the DLQ once: 100 rows queued; a second identical replay queues nothing.
      rx.behaviour = () => ({ status: 200 });
      const from = rx.received.length;
      const r1 = await fast.api<{ queued: number }>("POST", `/v1/subscriptions/${id}/dlq/replay`, {});
      expect(r1.body.queued).toBe(100);
      const r2 = await fast.api<{ queued: number }>("POST", `/v1/subscriptions/${id}/dlq/replay`, {});
      expect(r2.body.queued).toBe(0);
      expect((await fast.api("PATCH", `/v1/subscriptions/${id}`, { status: "active" })).status).toBe(200);
      const drained = await eventually(async () => {
        const v = await fast.api<Sub>("GET", `/v1/subscriptions/${id}`);
        return v.body.pending_count === 0 ? v.body : undefined;
      }, 60_000);
      expect(drained.dlq_count).toBe(0);
      const after = rx.received.slice(from);
      expect(after.every((x) => x.verified)).toBe(true);
      expect(after).toHaveLength(120);
      expect(new Set(after.map((x) => (x.body.data as { n: number }).n)).size).toBe(120);
    } finally {
      await fast.close();
      await rx.close();
    }
  });
});
