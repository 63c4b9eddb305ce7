import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Gate, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
  pending_count: number;
  dlq_count: number;
  last_delivered_event_id: number | null;
}
interface EventView {
  deliveries: Array<{
    subscription_id: string;
    attempt_number: number;
    status: string;
    error_kind: string | null;
    error_detail: string | null;
    response_status: number | null;
    webhook_id: string;
  }>;
}

describe.each(STORE_KINDS)("delivery on the %s store", (kind) => {
  let h: TestHerald;
  let rx: Receiver;
  beforeAll(async () => {
    h = await startTestHerald(
      kind,
      {
        retryScheduleMs: [100, 100, 100],
        schedulerIntervalMs: 200,
        requestTimeoutMs: 60_000,
        leaseMs: 300_000,
      },
      { api: true, dispatcher: true },
    );
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(async () => {
    await rx?.close();
  });

  const subscribe = async (tenant: string, body: Record<string, unknown> = {}) => {
    const r = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: tenant,
      url: rx.url(),
      event_types: ["*"],
      ...body,
    });
    expect(r.status).toBe(201);
    rx.trust(r.body.secret);
    return r.body;
  };
  const emit = async (tenant: string, payload: unknown, type = "thing.happened") => {
    const r = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: tenant,
      event_type: type,
      payload,
    });
    expect(r.status).toBe(202);
    return r.body.event_id;
  };

  it("POSTs a Standard Webhooks message that a verifier library accepts, and records it delivered", async () => {
    rx = await new Receiver().start();
    const s = await subscribe("d1", { ordering: "ordered" });
    const id = await emit("d1", { contract: "c-1", amount: 12 }, "contract.executed");
    await rx.waitFor((r) => r.length === 1);
    const got = rx.received[0]!;
    expect(got.verified).toBe(true);
    expect(got.body).toMatchObject({ type: "contract.executed", data: { contract: "c-1", amount: 12 } });
    expect(Number.isNaN(Date.parse(got.body.timestamp))).toBe(false);

    // One altered byte and the same verifier refuses it.
    const altered = got.rawBody.replace('"amount":12', '"amount":13');
    expect(() =>
      new Webhook(s.secret).verify(altered, {
        "webhook-id": got.webhookId,
        "webhook-timestamp": got.timestamp,
        "webhook-signature": got.signature,
      }),
    ).toThrow();

    const sub = await eventually(async () => {
      const v = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
      return v.body.pending_count === 0 && v.body.last_delivered_event_id === id ? v.body : undefined;
    });
    expect(sub.dlq_count).toBe(0);
    const ev = await h.api<EventView>("GET", `/v1/events/${id}`);
    expect(ev.body.deliveries).toMatchObject([
      { status: "delivered", attempt_number: 1, response_status: 200 },
    ]);
  });

  it("a failing head blocks only its own queue, retries on schedule with the same webhook-id, then goes to the DLQ and the queue moves on", async () => {
    rx = await new Receiver().start();
    rx.behaviour = (r) =>
      r.path === "/bad" && (r.body.data as { n: number }).n === 1 ? { status: 500 } : { status: 200 };
    const blocked = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "d2",
      url: rx.url("/bad"),
      event_types: ["a"],
      ordering: "ordered",
    });
    rx.trust(blocked.body.secret);
    const other = await subscribe("d2", { event_types: ["a"], ordering: "ordered" });
    const e1 = await emit("d2", { n: 1 }, "a");
    const e2 = await emit("d2", { n: 2 }, "a");
    const e3 = await emit("d2", { n: 3 }, "a");

    // The other queue is not held up by the failing head.
    await rx.waitFor((r) => r.filter((x) => x.path === "/hook").length === 3, 20_000, "other queue");
    // The bad queue: 4 attempts of event 1 (schedule of 3 delays), then 2 and 3 in order.
    await rx.waitFor((r) => r.filter((x) => x.path === "/bad").length === 6, 20_000, "bad queue");
    const bad = rx.received.filter((x) => x.path === "/bad");
    expect(bad.map((x) => (x.body.data as { n: number }).n)).toEqual([1, 1, 1, 1, 2, 3]);
    expect(new Set(bad.slice(0, 4).map((x) => x.webhookId)).size).toBe(1);
    // Attempts are spaced by the back-off (at least 0.8 × 100 ms apart).
    for (let i = 1; i < 4; i++) expect(bad[i]!.at - bad[i - 1]!.at).toBeGreaterThanOrEqual(75);

    const ev1 = await h.api<EventView>("GET", `/v1/events/${e1}`);
    const rows = ev1.body.deliveries.filter((d) => d.subscription_id === blocked.body.subscription_id);
    expect(rows.map((d) => [d.attempt_number, d.status, d.error_kind])).toEqual([
      [1, "failed", "5xx"],
      [2, "failed", "5xx"],
      [3, "failed", "5xx"],
      [4, "dlq", "5xx"],
    ]);
    const s = await eventually(async () => {
      const v = await h.api<Sub>("GET", `/v1/subscriptions/${blocked.body.subscription_id}`);
      return v.body.last_delivered_event_id === e3 ? v.body : undefined;
    });
    expect(s).toMatchObject({ pending_count: 0, dlq_count: 1 });
    expect(e2).toBeLessThan(e3);
    const o = await h.api<Sub>("GET", `/v1/subscriptions/${other.subscription_id}`);
    expect(o.body.dlq_count).toBe(0);
  });

  it("never has more than max_in_flight POSTs open for an unordered subscription", async () => {
    rx = await new Receiver().start();
    rx.behaviour = () => new Promise((resolve) => setTimeout(() => resolve({ status: 200 }), 15));
    await subscribe("d3", { ordering: "unordered", max_in_flight: 3 });
    const r = await h.api("POST", "/v1/events/batch", {
      events: Array.from({ length: 40 }, (_, i) => ({ tenant_id: "d3", event_type: "x", payload: { i } })),
    });
    expect(r.status).toBe(202);
    await rx.waitFor((x) => x.length === 40);
    expect(rx.maxOpen).toBeLessThanOrEqual(3);
    expect(rx.maxOpen).toBeGreaterThan(1);
    expect(new Set(rx.received.map((x) => (x.body.data as { i: number }).i)).size).toBe(40);
  });

  it("classifies real faults: 404 → 4xx, 503 + Retry-After → 5xx, closed port → connection", async () => {
    rx = await new Receiver().start();
    rx.behaviour = (r) =>
      r.path === "/404"
        ? { status: 404 }
        : r.path === "/503"
          ? { status: 503, headers: { "retry-after": "1" } }
          : { status: 200 };
    const s404 = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "d4a",
      url: rx.url("/404"),
      event_types: ["*"],
    });
    const s503 = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "d4b",
      url: rx.url("/503"),
      event_types: ["*"],
    });
    const closed = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "d4c",
      url: "http://127.0.0.1:1/x",
      event_types: ["*"],
    });
    const cases: Array<[string, Sub, string]> = [
      ["d4a", s404.body, "4xx"],
      ["d4b", s503.body, "5xx"],
      ["d4c", closed.body, "connection"],
    ];
    for (const [tenant, sub, kindWanted] of cases) {
      const id = await emit(tenant, { k: kindWanted });
      const row = await eventually(async () => {
        const ev = await h.api<EventView>("GET", `/v1/events/${id}`);
        return ev.body.deliveries.find(
          (d) => d.subscription_id === sub.subscription_id && d.status === "failed",
        );
      });
      expect(row.error_kind, tenant).toBe(kindWanted);
      expect(row.error_detail, tenant).toBeTruthy();
    }
  });
});

describe.each(STORE_KINDS)("fairness and shutdown on the %s store", (kind) => {
  it("a slow endpoint cannot take every POST slot of a process: another queue is still served", async () => {
    const h = await startTestHerald(
      kind,
      { maxConcurrentPosts: 4, schedulerIntervalMs: 200, requestTimeoutMs: 30_000, leaseMs: 60_000 },
      { api: true, dispatcher: true },
    );
    const rx = await new Receiver().start();
    const gate = new Gate();
    try {
      rx.behaviour = async (r) => {
        if (r.path === "/slow") await gate.opened;
        return { status: 200 };
      };
      const slow = await h.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: "f1",
        url: rx.url("/slow"),
        event_types: ["*"],
        max_in_flight: 1000,
      });
      const quick = await h.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: "f2",
        url: rx.url("/quick"),
        event_types: ["*"],
      });
      rx.trust(slow.body.secret);
      rx.trust(quick.body.secret);
      await h.api("POST", "/v1/events/batch", {
        events: Array.from({ length: 30 }, (_, i) => ({ tenant_id: "f1", event_type: "x", payload: { i } })),
      });
      await rx.waitFor((r) => r.filter((x) => x.path === "/slow").length >= 3, 20_000, "slow requests held");
      await h.api("POST", "/v1/events", { tenant_id: "f2", event_type: "x", payload: { quick: true } });
      await rx.waitFor(
        (r) => r.some((x) => x.path === "/quick"),
        20_000,
        "the other queue served while the slow one holds",
      );
      // The slow endpoint holds every slot but the reserve (an eighth, at least one): 3 of the process's 4.
      expect(rx.received.filter((x) => x.path === "/slow").length).toBeLessThanOrEqual(3);
    } finally {
      gate.open();
      await h.close();
      await rx.close();
    }
  });

  it("on stop, waits for the POSTs in flight and records them: nothing is left in flight", async () => {
    const h = await startTestHerald(
      kind,
      { schedulerIntervalMs: 200, requestTimeoutMs: 30_000, leaseMs: 60_000 },
      { api: true, dispatcher: true },
    );
    const rx = await new Receiver().start();
    const gate = new Gate();
    rx.behaviour = async () => {
      await gate.opened;
      return { status: 200 };
    };
    try {
      const s = await h.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: "sd",
        url: rx.url(),
        event_types: ["*"],
      });
      rx.trust(s.body.secret);
      const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
        tenant_id: "sd",
        event_type: "x",
        payload: {},
      });
      await rx.waitFor((r) => r.length === 1, 20_000, "the request in flight");
      const stopped = h.proc.stop();
      gate.open();
      await stopped;
      const rows = await h.store.db.query<{ status: string }>(
        "SELECT status FROM deliveries WHERE event_id = $1",
        [ev.body.event_id],
      );
      expect(rows.rows).toEqual([{ status: "delivered" }]);
    } finally {
      gate.open();
      await h.close();
      await rx.close();
    }
  });
});
