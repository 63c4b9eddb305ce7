import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CATALOG, NOT_RETRIED_SUFFIX } from "../../src/domain/error-kind.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
  pending_count: number;
  dlq_count: number;
  status: string;
}
interface Delivery {
  delivery_id: number;
  subscription_id: string;
  attempt_number: number;
  status: string;
  error_kind: string | null;
  error_detail: string | null;
  attempted_at: string | null;
  replay_of: number | null;
}

/**
 * A subscription to a loopback receiver is registered through a process that allows private targets;
 * the dispatching process refuses them at send time, as it would refuse a host name that resolves to a
 * private address (the same `ssrf_blocked` attempt, see test/http/sender.test.ts).
 */
describe.each(STORE_KINDS)("an ssrf_blocked attempt on the %s store", (kind) => {
  let lax: TestHerald;
  let strict: TestHerald;
  let rx: Receiver;
  const dispatching = {
    retryScheduleMs: [100, 100, 100],
    schedulerIntervalMs: 200,
    requestTimeoutMs: 60_000,
    leaseMs: 300_000,
  };
  beforeAll(async () => {
    rx = await new Receiver().start();
    lax = await startTestHerald(kind, { allowPrivateTargets: true }, { api: true, dispatcher: false });
    strict = await startTestHerald(
      kind,
      { ...dispatching, allowPrivateTargets: false },
      { api: true, dispatcher: true },
      lax.store,
    );
  });
  afterEach(() => {
    rx.behaviour = () => ({ status: 200 });
  });
  afterAll(async () => {
    await strict?.close();
    await lax?.close();
    await rx?.close();
  });

  const deliveriesOf = async (h: TestHerald, eventId: number, sub: string) =>
    (await h.api<{ deliveries: Delivery[] }>("GET", `/v1/events/${eventId}`)).body.deliveries.filter(
      (d) => d.subscription_id === sub,
    );

  it("goes to the DLQ on its first attempt, counted, with no retry queued; a replay tries again", async () => {
    const created = await lax.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "ssrf1",
      url: rx.url("/hook"),
      event_types: ["*"],
      ordering: "ordered",
    });
    expect(created.status).toBe(201);
    rx.trust(created.body.secret);
    const sub = created.body.subscription_id;

    const accepted = await strict.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "ssrf1",
      event_type: "thing.happened",
      payload: { n: 1 },
    });
    expect(accepted.status).toBe(202);
    const eventId = accepted.body.event_id;

    const rows = await eventually(async () => {
      const ds = await deliveriesOf(strict, eventId, sub);
      return ds.some((d) => d.status === "dlq") ? ds : undefined;
    });
    // The retry row would be written by the same statement as the DLQ row: there is none.
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ attempt_number: 1, status: "dlq", error_kind: "ssrf_blocked" });
    expect(rows[0]!.error_detail).toMatch(new RegExp(`^${ERROR_CATALOG.ssrf_private_address}: `));
    expect(rows[0]!.error_detail!.endsWith(NOT_RETRIED_SUFFIX)).toBe(true);
    expect(rx.received).toHaveLength(0);

    const after = await strict.api<Sub>("GET", `/v1/subscriptions/${sub}`);
    expect(after.body).toMatchObject({ pending_count: 0, dlq_count: 1, status: "active" });
    // A scheduler pass finds nothing due for it either.
    await strict.proc.scheduler!.tick();
    expect(await deliveriesOf(strict, eventId, sub)).toHaveLength(1);

    // A replay is a fresh attempt: tried again (and refused again by this process).
    const replay = await strict.api<{ delivery_id: number }>(
      "POST",
      `/v1/deliveries/${rows[0]!.delivery_id}/replay`,
    );
    expect(replay.status).toBe(202);
    const replayed = await eventually(async () => {
      const ds = await deliveriesOf(strict, eventId, sub);
      const r = ds.find((d) => d.delivery_id === replay.body.delivery_id);
      return r?.status === "dlq" ? r : undefined;
    });
    expect(replayed).toMatchObject({
      attempt_number: 1,
      error_kind: "ssrf_blocked",
      replay_of: rows[0]!.delivery_id,
    });
    expect(replayed.attempted_at).not.toBeNull();
    expect(await deliveriesOf(strict, eventId, sub)).toHaveLength(2);
    expect(rx.received).toHaveLength(0);
  });

  it("a replay through a process that allows the target delivers it", async () => {
    const created = await lax.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "ssrf2",
      url: rx.url("/fixed"),
      event_types: ["*"],
    });
    rx.trust(created.body.secret);
    const sub = created.body.subscription_id;
    const accepted = await strict.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "ssrf2",
      event_type: "thing.happened",
      payload: { n: 2 },
    });
    const dlq = await eventually(async () =>
      (await deliveriesOf(strict, accepted.body.event_id, sub)).find((d) => d.status === "dlq"),
    );
    expect(dlq.error_kind).toBe("ssrf_blocked");

    // Stop the refusing dispatcher; a process allowing private targets replays it.
    await strict.close();
    const allowing = await startTestHerald(
      kind,
      { ...dispatching, allowPrivateTargets: true },
      { api: true, dispatcher: true },
      lax.store,
    );
    try {
      const replay = await allowing.api<{ delivery_id: number }>(
        "POST",
        `/v1/deliveries/${dlq.delivery_id}/replay`,
      );
      expect(replay.status).toBe(202);
      await rx.waitFor((r) => r.some((x) => x.path === "/fixed"), 20_000, "the replayed delivery");
      const done = await eventually(async () => {
        const ds = await deliveriesOf(allowing, accepted.body.event_id, sub);
        const r = ds.find((d) => d.delivery_id === replay.body.delivery_id);
        return r?.status === "delivered" ? r : undefined;
      });
      expect(done.replay_of).toBe(dlq.delivery_id);
      const s = await allowing.api<Sub>("GET", `/v1/subscriptions/${sub}`);
      // The replayed DLQ row no longer counts.
      expect(s.body).toMatchObject({ pending_count: 0, dlq_count: 0 });
    } finally {
      await allowing.close();
    }
  });
});
