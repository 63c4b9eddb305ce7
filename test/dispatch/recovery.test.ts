import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_ENCRYPTION_KEY } from "../../src/config.ts";
import { claimDue } from "../../src/store/claim.ts";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Gate, Receiver } from "../support/receiver.ts";
import { createTestStore, STORE_KINDS, type TestStore } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
}
interface Delivery {
  attempt_number: number;
  status: string;
  error_detail: string | null;
  scheduled_at: string;
  attempted_at: string | null;
  webhook_id: string;
}

/** A lease far longer than any wait below: a row that comes back did not come back through its lease. */
const LONG_LEASE_MS = 600_000;

describe.each(STORE_KINDS)("lost attempts and retry timing on the %s store", (kind) => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const herald = async (overrides: Parameters<typeof startTestHerald>[1], store?: TestStore) => {
    const h = await startTestHerald(kind, overrides, { api: true, dispatcher: true }, store);
    cleanup.push(() => h.close());
    return h;
  };
  const receiver = async () => {
    const rx = await new Receiver().start();
    cleanup.push(() => rx.close());
    return rx;
  };
  const subscribe = async (h: TestHerald, rx: Receiver, tenant: string, ordering: string) => {
    const r = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: tenant,
      url: rx.url(`/${tenant}`),
      event_types: ["*"],
      ordering,
      max_in_flight: 20,
    });
    expect(r.status).toBe(201);
    rx.trust(r.body.secret);
    return r.body;
  };
  const deliveriesOf = async (h: TestHerald, eventId: number) =>
    (await h.api<{ deliveries: Delivery[] }>("GET", `/v1/events/${eventId}`)).body.deliveries.sort(
      (a, b) => a.attempt_number - b.attempt_number,
    );
  /** How late each attempt after the first went out, in ms after it was due. */
  const lateness = (rows: Delivery[]) =>
    rows.slice(1).map((d) => Date.parse(d.attempted_at ?? "") - Date.parse(d.scheduled_at));

  it("sends each retry at its due time, with the scheduler's safety pass a minute away", async () => {
    const h = await herald({
      retryScheduleMs: [300, 300, 300],
      schedulerIntervalMs: 60_000,
      controlRefreshMs: 60_000,
    });
    const rx = await receiver();
    await subscribe(h, rx, "late", "ordered");
    rx.behaviour = (_r, index) => ({ status: index < 2 ? 500 : 200 });
    const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "late",
      event_type: "x",
      payload: { n: 1 },
    });
    await rx.waitFor((r) => r.length === 3, 30_000, "two retries");
    const rows = await eventually(async () => {
      const d = await deliveriesOf(h, ev.body.event_id);
      return d.length === 3 && d[2]!.status === "delivered" ? d : undefined;
    });
    // Waiting for the safety pass would make them a minute late.
    for (const ms of lateness(rows)) expect(ms).toBeLessThan(1000);
  });

  it("after a resume, retries a head in back-off at its due time", async () => {
    const h = await herald({
      retryScheduleMs: [1500, 300],
      schedulerIntervalMs: 60_000,
      controlRefreshMs: 60_000,
    });
    const rx = await receiver();
    const s = await subscribe(h, rx, "resumed", "ordered");
    rx.behaviour = (_r, index) => ({ status: index === 0 ? 500 : 200 });
    const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "resumed",
      event_type: "x",
      payload: { n: 1 },
    });
    await rx.waitFor((r) => r.length === 1, 30_000, "the first attempt");
    await eventually(async () => ((await deliveriesOf(h, ev.body.event_id)).length === 2 ? true : undefined));
    const path = `/v1/subscriptions/${s.subscription_id}`;
    expect((await h.api("PATCH", path, { status: "paused" })).status).toBe(200);
    expect((await h.api("PATCH", path, { status: "active" })).status).toBe(200);
    await rx.waitFor((r) => r.length === 2, 30_000, "the retry");
    const rows = await eventually(async () => {
      const d = await deliveriesOf(h, ev.body.event_id);
      return d[1]?.status === "delivered" ? d : undefined;
    });
    for (const ms of lateness(rows)) expect(ms).toBeLessThan(1000);
  });

  if (kind === "embedded") {
    it("takes back every in-flight row when its one process starts, without waiting for the lease", async () => {
      const store = await createTestStore(kind);
      cleanup.push(() => store.dispose());
      const h = await herald({ leaseMs: LONG_LEASE_MS }, store);
      const rx = await receiver();
      await subscribe(h, rx, "restart", "unordered");
      await h.proc.scheduler!.stop();
      await h.proc.dispatcher!.stop();
      const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
        tenant_id: "restart",
        event_type: "x",
        payload: { n: 1 },
      });
      // A process that claimed and then died, as the store finds it on the next start.
      await claimDue(store.db, { owner: "killed", leaseMs: LONG_LEASE_MS, limit: 10 });
      await h.close();
      cleanup.pop();
      const again = await herald({ leaseMs: LONG_LEASE_MS }, store);
      await rx.waitFor((r) => r.length === 1, 30_000, "the taken-back delivery");
      const rows = await eventually(async () => {
        const d = await deliveriesOf(again, ev.body.event_id);
        return d[1]?.status === "delivered" ? d : undefined;
      });
      expect(rows[0]!.error_detail).toMatch(/worker lost/i);
    });
  }

  if (kind === "postgres") {
    it("takes back a killed dispatcher's in-flight rows within seconds, long before their lease", async () => {
      const h = await herald({ leaseMs: LONG_LEASE_MS, schedulerIntervalMs: 60_000 });
      const rx = await receiver();
      await subscribe(h, rx, "killed", "unordered");
      const hold = new Gate();
      cleanup.push(async () => hold.open());
      // The doomed process's POSTs are held open; once it is dead, everything is answered.
      let doomedPid = 0;
      rx.behaviour = async () => {
        if (doomedPid !== 0) await hold.opened;
        return { status: 200 };
      };
      await h.proc.scheduler!.stop();
      await h.proc.dispatcher!.stop();
      await h.proc.pushDrain!.stop();
      const child = spawn(process.execPath, ["bin/herald.js", "dispatcher", "--no-migrate"], {
        env: {
          ...process.env,
          REDIS_URL: "",
          DATABASE_URL: h.store.databaseUrl ?? "",
          HERALD_ADMIN_TOKEN: ADMIN,
          HERALD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
          HERALD_ALLOW_PRIVATE_TARGETS: "true",
          HERALD_REQUEST_TIMEOUT_MS: "290000",
          HERALD_LEASE_MS: String(LONG_LEASE_MS),
          HERALD_SCHEDULER_INTERVAL_MS: "100",
          HERALD_LOG_LEVEL: "warn",
        },
        stdio: "ignore",
      });
      doomedPid = child.pid ?? -1;
      cleanup.push(async () => {
        if (child.exitCode === null) child.kill("SIGKILL");
      });
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
          tenant_id: "killed",
          event_type: "x",
          payload: { n: i },
        });
        ids.push(ev.body.event_id);
      }
      await rx.waitFor((r) => r.length === 5, 60_000, "the doomed process's five POSTs");
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
      doomedPid = 0;
      await h.proc.dispatcher!.start();
      await h.proc.scheduler!.start();
      await rx.waitFor((r) => r.length === 10, 30_000, "the five sent again");
      for (const id of ids) {
        const rows = await eventually(async () => {
          const d = await deliveriesOf(h, id);
          return d[1]?.status === "delivered" ? d : undefined;
        });
        expect(rows[0]!.error_detail).toMatch(/worker lost/i);
        expect(new Set(rows.map((d) => d.webhook_id)).size).toBe(1);
      }
    });
  }
});
