import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_CHANNEL, drainLockKey } from "../../src/coordination/index.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";
import { hasRedisServer, PrivateRedis } from "../support/redis-server.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
}

const counter = async (h: TestHerald, name: string, label: Record<string, string>) => {
  const m = (await h.proc.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return m
    .filter((v) => Object.entries(label).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0);
};

describe.skipIf(!process.env.REDIS_URL).each(STORE_KINDS)(
  "pause and resume across processes (%s store)",
  (kind) => {
    let api: TestHerald;
    let rx: Receiver;
    const prefix = `t${randomBytes(4).toString("hex")}:`;
    beforeAll(async () => {
      rx = await new Receiver().start();
      api = await startTestHerald(
        kind,
        { redisUrl: process.env.REDIS_URL!, redisPrefix: prefix },
        { api: true, dispatcher: false },
      );
    });
    afterAll(async () => {
      await api?.close();
      await rx?.close();
    });

    /** A dispatcher-only process on the API's store; its scheduler a minute away. */
    const startDispatcher = (redisPrefix: string, controlRefreshMs: number) =>
      startTestHerald(
        kind,
        { redisUrl: process.env.REDIS_URL!, redisPrefix, schedulerIntervalMs: 60_000, controlRefreshMs },
        { api: false, dispatcher: true },
        api.store,
      );

    const run = async (tenant: string, dispatcher: TestHerald) => {
      const s = await api.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: tenant,
        url: rx.url(`/${tenant}`),
        event_types: ["*"],
        ordering: "ordered",
      });
      rx.trust(s.body.secret);
      const id = s.body.subscription_id;
      const mine = () => rx.received.filter((r) => r.path === `/${tenant}`);
      await api.api("POST", "/v1/events", { tenant_id: tenant, event_type: "x", payload: { n: 1 } });
      await rx.waitFor(() => mine().length === 1, 20_000, "first event");

      expect((await api.api("PATCH", `/v1/subscriptions/${id}`, { status: "paused" })).status).toBe(200);
      await api.api("POST", "/v1/events", { tenant_id: tenant, event_type: "x", payload: { n: 2 } });
      // Let the dispatcher look for work while paused: it must find none.
      dispatcher.proc.dispatcher!.wake();
      await dispatcher.proc.scheduler!.tick();
      const resumedAt = Date.now();
      expect((await api.api("PATCH", `/v1/subscriptions/${id}`, { status: "active" })).status).toBe(200);
      await rx.waitFor(() => mine().length === 2, 20_000, "the event queued while paused");
      expect(mine()[1]!.at).toBeGreaterThanOrEqual(resumedAt);
      expect((mine()[1]!.body.data as { n: number }).n).toBe(2);
    };

    it("the other process resumes at once through the control channel (scheduler and refresh a minute away)", async () => {
      const d = await startDispatcher(prefix, 60_000);
      try {
        await run("c1", d);
        // The drain counts its outcome when it ends (after a last look at the head): wait for it.
        await eventually(
          async () => (await counter(d, "herald_push_trigger_total", { outcome: "success" })) > 0,
        );
      } finally {
        await d.close();
      }
    });

    it("one batch for three queues reaches the other process as one message, and all three drain at once", async () => {
      const d = await startDispatcher(prefix, 60_000);
      const heard: string[][] = [];
      const unsubscribe = await d.proc.coordinator.subscribe(CONTROL_CHANNEL, (m) => {
        if (m.type === "queued") heard.push(m.subscription_ids ?? [m.subscription_id]);
      });
      try {
        const tenants = ["q1", "q2", "q3"];
        const ids: string[] = [];
        for (const tenant of tenants) {
          const s = await api.api<Sub>("POST", "/v1/subscriptions", {
            tenant_id: tenant,
            url: rx.url(`/${tenant}`),
            event_types: ["*"],
          });
          rx.trust(s.body.secret);
          ids.push(s.body.subscription_id);
        }
        const batch = await api.api("POST", "/v1/events/batch", {
          events: tenants.map((tenant) => ({ tenant_id: tenant, event_type: "x", payload: { tenant } })),
        });
        expect(batch.status).toBe(202);
        // The scheduler is a minute away: only the control message can start these drains.
        await rx.waitFor(
          (r) => tenants.every((t) => r.some((x) => x.path === `/${t}`)),
          20_000,
          "one event at each of the three queues",
        );
        expect(heard).toHaveLength(1);
        expect([...heard[0]!].sort()).toEqual([...ids].sort());
      } finally {
        await unsubscribe();
        await d.close();
      }
    });

    it("with the control messages lost, the periodic refresh resumes it", async () => {
      // Another prefix: this dispatcher hears none of the API's messages.
      const d = await startDispatcher(`${prefix}deaf:`, 1500);
      try {
        await run("c2", d);
        expect(await counter(d, "herald_push_trigger_total", {})).toBe(0);
      } finally {
        await d.close();
      }
    });
  },
);

describe.skipIf(!hasRedisServer()).each(STORE_KINDS)("Redis outage (%s store)", (kind) => {
  let redis: PrivateRedis;
  let h: TestHerald;
  let rx: Receiver;
  beforeAll(async () => {
    redis = await PrivateRedis.create();
    rx = await new Receiver().start();
    h = await startTestHerald(
      kind,
      { redisUrl: redis.url, schedulerIntervalMs: 500, requestTimeoutMs: 60_000, leaseMs: 300_000 },
      { api: true, dispatcher: true },
    );
  });
  afterAll(async () => {
    await h?.close();
    await rx?.close();
    await redis?.stop();
  });

  it("accepts events while Redis is down, the scheduler delivers them, and push drain comes back with Redis", async () => {
    const s = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "ro",
      url: rx.url(),
      event_types: ["*"],
      ordering: "ordered",
    });
    rx.trust(s.body.secret);
    await h.api("POST", "/v1/events", { tenant_id: "ro", event_type: "x", payload: { n: 0 } });
    await rx.waitFor((r) => r.length === 1, 20_000, "before the outage");
    // The drain that delivered it holds the queue's lock until its pass ends; a pass still running when
    // Redis stops would go on claiming the new events itself, no new lock asked for (seen in CI: all six
    // delivered in 94 ms, no lock error counted yet). Stop Redis once it has let go.
    await eventually(
      async () => !(await h.proc.coordinator.isLocked(drainLockKey(s.body.subscription_id))),
      20_000,
      "the first drain's release",
    );

    await redis.stop();
    const errorsBefore = await counter(h, "herald_push_trigger_total", { outcome: "error" });
    for (let n = 1; n <= 5; n++) {
      const r = await h.api("POST", "/v1/events", { tenant_id: "ro", event_type: "x", payload: { n } });
      expect(r.status).toBe(202);
    }
    await rx.waitFor((r) => r.length === 6, 30_000, "deliveries by the scheduler during the outage");
    expect(rx.received.map((r) => (r.body.data as { n: number }).n)).toEqual([0, 1, 2, 3, 4, 5]);
    // Each trigger during the outage asks Redis for the lock and counts an error, whenever the ask fails.
    await eventually(
      async () => (await counter(h, "herald_push_trigger_total", { outcome: "error" })) > errorsBefore,
      20_000,
      "push drain errors counted during the outage",
    );
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);

    await redis.start();
    await eventually(async () => h.proc.coordinator.healthy(), 20_000, "reconnection");
    const okBefore = await counter(h, "herald_push_trigger_total", { outcome: "success" });
    await h.api("POST", "/v1/events", { tenant_id: "ro", event_type: "x", payload: { n: 6 } });
    await rx.waitFor((r) => r.length === 7, 20_000, "after the outage");
    await eventually(
      async () => (await counter(h, "herald_push_trigger_total", { outcome: "success" })) > okBefore,
    );
  });
});
