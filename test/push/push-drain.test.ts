import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { drainLockKey } from "../../src/coordination/index.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Gate, Receiver } from "../support/receiver.ts";
import type { StoreKind } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
}

type Variant = { store: StoreKind; redis: boolean };
const VARIANTS: Variant[] = [
  { store: "embedded", redis: false },
  ...(process.env.REDIS_URL ? [{ store: "embedded" as const, redis: true }] : []),
  ...(process.env.REDIS_URL && process.env.DATABASE_URL ? [{ store: "postgres" as const, redis: true }] : []),
];

const counter = async (h: TestHerald, name: string, label: Record<string, string>) => {
  const m = (await h.proc.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return m
    .filter((v) => Object.entries(label).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0);
};

describe.each(VARIANTS)("push drain ($store store, redis: $redis)", ({ store, redis }) => {
  let h: TestHerald;
  let rx: Receiver;
  beforeAll(async () => {
    h = await startTestHerald(
      store,
      {
        // The safety net sleeps a minute: anything that arrives sooner came by push.
        schedulerIntervalMs: 60_000,
        controlRefreshMs: 60_000,
        drainLockTtlMs: 60_000,
        retryScheduleMs: [1500],
        requestTimeoutMs: 30_000,
        leaseMs: 60_000,
        ...(redis
          ? { redisUrl: process.env.REDIS_URL!, redisPrefix: `t${randomBytes(4).toString("hex")}:` }
          : {}),
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

  const subscribe = async (tenant: string, ordering = "ordered", path = "/hook") => {
    const r = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: tenant,
      url: rx.url(path),
      event_types: ["*"],
      ordering,
    });
    rx.trust(r.body.secret);
    return r.body;
  };

  it("delivers an event on an idle ordered queue at once, without waiting for the scheduler, and frees the lock", async () => {
    rx = await new Receiver().start();
    // Let the scheduler's first pass go by, so it is asleep for a minute.
    await h.proc.scheduler!.tick();
    const s = await subscribe("p1");
    const before = await counter(h, "herald_push_trigger_total", { outcome: "success" });
    await h.api("POST", "/v1/events", { tenant_id: "p1", event_type: "x", payload: { n: 1 } });
    await rx.waitFor((r) => r.length === 1, 20_000, "first event");
    // The lock is released when the drain ends (not left to its 60 s TTL) ...
    await eventually(async () => !(await h.proc.coordinator.isLocked(drainLockKey(s.subscription_id))));
    // ... so the next event goes at once too.
    await h.api("POST", "/v1/events", { tenant_id: "p1", event_type: "x", payload: { n: 2 } });
    await rx.waitFor((r) => r.length === 2, 20_000, "second event");
    expect(rx.received.map((r) => (r.body.data as { n: number }).n)).toEqual([1, 2]);
    await eventually(
      async () => (await counter(h, "herald_push_trigger_total", { outcome: "success" })) >= before + 2,
    );
  });

  it("200 events posted at once to one queue: one drain at a time, all delivered once, in queue order", async () => {
    rx = await new Receiver().start();
    const s = await subscribe("p2");
    const startedBefore = h.proc.pushDrain!.drainsStarted;
    const posted = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        h.api<{ event_id: number }>("POST", "/v1/events", {
          tenant_id: "p2",
          event_type: "x",
          payload: { i },
        }),
      ),
    );
    expect(posted.every((p) => p.status === 202)).toBe(true);
    await rx.waitFor((r) => r.length >= 200, 60_000, "200 deliveries");
    const positions = await h.store.db.query<{ event_id: number }>(
      "SELECT event_id FROM deliveries WHERE subscription_id = $1 AND attempt_number = 1 ORDER BY position",
      [s.subscription_id],
    );
    const got = rx.received.map((r) => Number(r.webhookId.split("_")[1]));
    expect(got).toEqual(positions.rows.map((r) => r.event_id));
    expect(new Set(got).size).toBe(200);
    expect(h.proc.pushDrain!.maxConcurrentPerQueue).toBe(1);
    const drains = h.proc.pushDrain!.drainsStarted - startedBefore;
    expect(drains).toBeGreaterThanOrEqual(1);
    expect(drains).toBeLessThanOrEqual(200);
  });

  it("a head in back-off is not sent early when a new event arrives behind it", async () => {
    rx = await new Receiver().start();
    rx.behaviour = (_r, index) => (index === 0 ? { status: 500 } : { status: 200 });
    const s = await subscribe("p3");
    await h.api("POST", "/v1/events", { tenant_id: "p3", event_type: "x", payload: { n: 1 } });
    await rx.waitFor((r) => r.length === 1, 20_000, "first attempt");
    const retry = await eventually(async () => {
      const r = await h.store.db.query<{ scheduled_at: Date }>(
        "SELECT scheduled_at FROM deliveries WHERE subscription_id = $1 AND attempt_number = 2",
        [s.subscription_id],
      );
      return r.rows[0];
    });
    const backoffBefore = await counter(h, "herald_push_trigger_total", { outcome: "backoff" });
    await h.api("POST", "/v1/events", { tenant_id: "p3", event_type: "x", payload: { n: 2 } });
    await eventually(
      async () => (await counter(h, "herald_push_trigger_total", { outcome: "backoff" })) > backoffBefore,
    );
    // The scheduler wakes for the retry when it falls due (it sleeps until the next due time).
    h.proc.scheduler!.nudge();
    await rx.waitFor((r) => r.length === 3, 20_000, "retry and the new event");
    expect(rx.received.map((r) => (r.body.data as { n: number }).n)).toEqual([1, 1, 2]);
    expect(rx.received[1]!.at).toBeGreaterThanOrEqual(retry.scheduled_at.getTime());
  });

  it("a send that outlives its lock (20 s receiver, 1 s lock, 0.5 s scheduler) is neither duplicated nor overtaken", async () => {
    rx = await new Receiver().start();
    const slow = new Gate();
    const fast = await startTestHerald(
      store,
      {
        schedulerIntervalMs: 500,
        drainLockTtlMs: 1000,
        requestTimeoutMs: 30_000,
        leaseMs: 60_000,
        ...(redis
          ? { redisUrl: process.env.REDIS_URL!, redisPrefix: `t${randomBytes(4).toString("hex")}:` }
          : {}),
      },
      { api: true, dispatcher: true },
    );
    try {
      rx.behaviour = async (_r, index) => {
        if (index === 0) {
          // The receiver takes 20 s over the first event.
          await Promise.race([slow.opened, new Promise((r) => setTimeout(r, 20_000))]);
        }
        return { status: 200 };
      };
      const r = await fast.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: "p4",
        url: rx.url(),
        event_types: ["*"],
        ordering: "ordered",
      });
      rx.trust(r.body.secret);
      for (let n = 1; n <= 5; n++) {
        await fast.api("POST", "/v1/events", { tenant_id: "p4", event_type: "x", payload: { n } });
      }
      await rx.waitFor((x) => x.length === 5, 60_000, "5 deliveries");
      expect(rx.received.map((x) => (x.body.data as { n: number }).n)).toEqual([1, 2, 3, 4, 5]);
      const rows = await fast.store.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM deliveries WHERE subscription_id = $1",
        [r.body.subscription_id],
      );
      expect(rows.rows[0]!.n).toBe(5);
    } finally {
      slow.open();
      await fast.close();
    }
  });
});
