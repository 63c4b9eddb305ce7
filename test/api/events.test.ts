import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptWith } from "../../src/service/events.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  pending_count: number;
  status: string;
}
interface Accepted {
  event_id: number;
  deliveries: number;
  duplicate: boolean;
}

describe.each(STORE_KINDS)("events on the %s store", (kind) => {
  let h: TestHerald;
  const sub = async (body: Record<string, unknown>) => {
    const r = await h.api<Sub>("POST", "/v1/subscriptions", { url: "http://127.0.0.1:9/hook", ...body });
    expect(r.status).toBe(201);
    return r.body;
  };

  beforeAll(async () => {
    h = await startTestHerald(kind, { maxBodyBytes: 4096 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("fans out to exactly the matching subscriptions of the tenant, paused ones included", async () => {
    const match = await sub({ tenant_id: "fan", event_types: ["order.paid"], ordering: "ordered" });
    const wildcard = await sub({ tenant_id: "fan", event_types: ["*"] });
    const paused = await sub({ tenant_id: "fan", event_types: ["order.paid", "x"] });
    expect(
      (await h.api("PATCH", `/v1/subscriptions/${paused.subscription_id}`, { status: "paused" })).status,
    ).toBe(200);
    const otherType = await sub({ tenant_id: "fan", event_types: ["order.refunded"] });
    const otherTenant = await sub({ tenant_id: "fan-other", event_types: ["order.paid"] });
    const deleted = await sub({ tenant_id: "fan", event_types: ["order.paid"] });
    expect((await h.api("DELETE", `/v1/subscriptions/${deleted.subscription_id}`)).status).toBe(204);

    const r = await h.api<Accepted>("POST", "/v1/events", {
      tenant_id: "fan",
      event_type: "order.paid",
      payload: { n: 1 },
    });
    expect(r.status).toBe(202);
    expect(r.body.deliveries).toBe(3);

    const ev = await h.api<{
      deliveries: Array<{ subscription_id: string; attempt_number: number; status: string }>;
    }>("GET", `/v1/events/${r.body.event_id}`);
    expect(ev.body.deliveries.map((d) => d.subscription_id).sort()).toEqual(
      [match.subscription_id, wildcard.subscription_id, paused.subscription_id].sort(),
    );
    expect(ev.body.deliveries.every((d) => d.attempt_number === 1 && d.status === "pending")).toBe(true);
    for (const s of [otherType, otherTenant]) {
      const got = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
      expect(got.body.pending_count).toBe(0);
    }
    const p = await h.api<Sub>("GET", `/v1/subscriptions/${paused.subscription_id}`);
    expect(p.body).toMatchObject({ status: "paused", pending_count: 1 });
  });

  it("a failure in the caller's transaction after the accept leaves neither the event nor its deliveries", async () => {
    const s = await sub({ tenant_id: "atomic", event_types: ["a"] });
    const before = await h.store.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE tenant_id = 'atomic'",
    );
    await expect(
      h.store.db.transaction(async (tx) => {
        const { accepted } = await acceptWith(tx, [
          {
            tenant_id: "atomic",
            event_type: "a",
            aggregate_id: null,
            occurred_at: new Date(),
            payload: {},
            idempotency_key: null,
            source_txn_id: null,
          },
        ]);
        expect(accepted[0]?.deliveries).toBe(1);
        throw new Error("crash after fan-out");
      }),
    ).rejects.toThrow("crash after fan-out");
    const after = await h.store.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE tenant_id = 'atomic'",
    );
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
    const d = await h.store.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE subscription_id = $1",
      [s.subscription_id],
    );
    expect(d.rows[0]!.n).toBe(0);
    expect((await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`)).body.pending_count).toBe(0);
  });

  it("an idempotency key repeat returns the first event_id and fans out nothing, also when repeats race", async () => {
    const s = await sub({ tenant_id: "idem", event_types: ["a"] });
    const first = await h.api<Accepted>(
      "POST",
      "/v1/events",
      { tenant_id: "idem", event_type: "a", payload: {} },
      undefined,
      {
        "idempotency-key": "k-1",
      },
    );
    expect(first.status).toBe(202);
    const again = await h.api<Accepted>("POST", "/v1/events", {
      tenant_id: "idem",
      event_type: "a",
      payload: {},
      idempotency_key: "k-1",
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ event_id: first.body.event_id, deliveries: 0, duplicate: true });

    const racing = await Promise.all(
      Array.from({ length: 12 }, () =>
        h.api<Accepted>("POST", "/v1/events", {
          tenant_id: "idem",
          event_type: "a",
          payload: {},
          idempotency_key: "k-race",
        }),
      ),
    );
    const ids = new Set(racing.map((r) => r.body.event_id));
    expect(ids.size).toBe(1);
    expect(racing.filter((r) => !r.body.duplicate)).toHaveLength(1);
    const got = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
    expect(got.body.pending_count).toBe(2);
    // The same key in another tenant is another event.
    const other = await h.api<Accepted>("POST", "/v1/events", {
      tenant_id: "idem-2",
      event_type: "a",
      payload: {},
      idempotency_key: "k-1",
    });
    expect(other.body.event_id).not.toBe(first.body.event_id);
  });

  it("a batch is accepted in one transaction, in order, with duplicates inside it collapsed", async () => {
    const s = await sub({ tenant_id: "batch", event_types: ["a", "b"], ordering: "ordered" });
    const r = await h.api<{ events: Accepted[] }>("POST", "/v1/events/batch", {
      events: [
        { tenant_id: "batch", event_type: "a", payload: { i: 0 } },
        { tenant_id: "batch", event_type: "b", payload: { i: 1 }, idempotency_key: "dup" },
        { tenant_id: "batch", event_type: "zzz", payload: { i: 2 } },
        { tenant_id: "batch", event_type: "a", payload: { i: 3 }, idempotency_key: "dup" },
      ],
    });
    expect(r.status).toBe(202);
    const [e0, e1, e2, e3] = r.body.events;
    expect(e0!.event_id).toBeLessThan(e1!.event_id);
    expect(e1!.event_id).toBeLessThan(e2!.event_id);
    expect(e3).toEqual({ event_id: e1!.event_id, deliveries: 0, duplicate: true });
    expect(e2!.deliveries).toBe(0);
    const rows = await h.store.db.query<{ event_id: number; position: number }>(
      "SELECT event_id, position FROM deliveries WHERE subscription_id = $1 ORDER BY position",
      [s.subscription_id],
    );
    expect(rows.rows).toEqual([
      { event_id: e0!.event_id, position: 1 },
      { event_id: e1!.event_id, position: 2 },
    ]);
  });

  it("fans a batch out over tenants, types and a wildcard: counts per event, positions in event order, webhook-ids, a pause at the pending ceiling", async () => {
    const a = await sub({ tenant_id: "fo1", event_types: ["a"], ordering: "ordered", pending_ceiling: 100 });
    const all = await sub({ tenant_id: "fo1", event_types: ["*"] });
    const other = await sub({ tenant_id: "fo2", event_types: ["a", "b"], ordering: "ordered" });
    // One event first, so the fo1 queues continue from position 1.
    const first = await h.api<Accepted>("POST", "/v1/events", {
      tenant_id: "fo1",
      event_type: "a",
      payload: {},
    });
    expect(first.body.deliveries).toBe(2);

    // 230 events: 0–199 to fo1, 200–229 to fo2; every third one of type b.
    const spec = Array.from({ length: 230 }, (_, i) => ({
      tenant_id: i < 200 ? "fo1" : "fo2",
      event_type: i % 3 === 2 ? "b" : "a",
    }));
    const r = await h.api<{ events: Accepted[] }>("POST", "/v1/events/batch", {
      events: spec.map((e, i) => ({ ...e, payload: { i } })),
    });
    expect(r.status).toBe(202);
    expect(r.body.events.map((e) => e.deliveries)).toEqual(
      spec.map((e) => (e.tenant_id === "fo2" ? 1 : e.event_type === "a" ? 2 : 1)),
    );
    const ids = r.body.events.map((e) => e.event_id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));

    const queue = async (subscriptionId: string) =>
      (
        await h.store.db.query<{ event_id: number; position: number; webhook_id: string }>(
          "SELECT event_id, position, webhook_id FROM deliveries WHERE subscription_id = $1 ORDER BY position",
          [subscriptionId],
        )
      ).rows;
    const expected = (subscriptionId: string, eventIds: number[]) =>
      eventIds.map((eventId, k) => ({
        event_id: eventId,
        position: k + 1,
        webhook_id: `msg_${eventId}_${subscriptionId.replace(/^sub_/, "")}`,
      }));
    const pick = (want: (e: (typeof spec)[number]) => boolean) => ids.filter((_, i) => want(spec[i]!));
    const aEvents = [first.body.event_id, ...pick((e) => e.tenant_id === "fo1" && e.event_type === "a")];
    const allEvents = [first.body.event_id, ...pick((e) => e.tenant_id === "fo1")];
    expect(await queue(a.subscription_id)).toEqual(expected(a.subscription_id, aEvents));
    expect(await queue(all.subscription_id)).toEqual(expected(all.subscription_id, allEvents));
    expect(await queue(other.subscription_id)).toEqual(
      expected(
        other.subscription_id,
        pick((e) => e.tenant_id === "fo2"),
      ),
    );

    // `a` reached its ceiling of 100 inside the batch: paused there, every delivery still queued.
    expect((await h.api<Sub>("GET", `/v1/subscriptions/${a.subscription_id}`)).body).toMatchObject({
      status: "paused",
      pause_reason: "pending_ceiling",
      pending_count: aEvents.length,
    });
    for (const s of [all, other]) {
      expect((await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`)).body).toMatchObject({
        status: "active",
        pending_count: (await queue(s.subscription_id)).length,
      });
    }
    const audit = await h.api<{
      items: Array<{ actor: string; action: string; reason: string; after: Record<string, unknown> }>;
    }>("GET", `/v1/audit?subscription_id=${a.subscription_id}`);
    const pauses = audit.body.items.filter((x) => x.action === "subscription.paused");
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toMatchObject({
      actor: "system",
      after: { status: "paused", pause_reason: "pending_ceiling", pending_count: 100 },
    });
    expect(pauses[0]!.reason).toMatch(/\(100 of 100\)$/);
  });

  it("assigns exact, gap-free queue positions when many producers post to one subscription at once", async () => {
    const s = await sub({ tenant_id: "conc", event_types: ["a"], ordering: "ordered" });
    const clients = 8;
    const perClient = 25;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; i < perClient; i++) {
          const r = await h.api("POST", "/v1/events", {
            tenant_id: "conc",
            event_type: "a",
            payload: { c, i },
          });
          expect(r.status).toBe(202);
        }
      }),
    );
    const rows = await h.store.db.query<{ position: number }>(
      "SELECT position FROM deliveries WHERE subscription_id = $1 ORDER BY position",
      [s.subscription_id],
    );
    expect(rows.rows.map((r) => r.position)).toEqual(
      Array.from({ length: clients * perClient }, (_, i) => i + 1),
    );
    const got = await h.api<Sub>("GET", `/v1/subscriptions/${s.subscription_id}`);
    expect(got.body.pending_count).toBe(clients * perClient);
  });

  describe("bad input", () => {
    const post = (body: unknown) =>
      h.api<{ error: { code: string; message: string } }>("POST", "/v1/events", body);

    it("names an unknown field", async () => {
      const r = await post({ tenant_id: "v", event_type: "a", payload: {}, colour: "red" });
      expect(r.status).toBe(400);
      expect(r.body.error).toEqual({ code: "unknown_field", message: 'unknown field "colour"' });
    });
    it("names a missing event_type", async () => {
      const r = await post({ tenant_id: "v", payload: {} });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain('"event_type"');
    });
    it("answers 413 for a payload over HERALD_MAX_BODY_BYTES, naming the field and the bound", async () => {
      const r = await post({ tenant_id: "v", event_type: "a", payload: { blob: "x".repeat(5000) } });
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe("payload_too_large");
      expect(r.body.error.message).toMatch(/payload .*4096 bytes.*HERALD_MAX_BODY_BYTES/);
    });
    it("answers 413 for a request body far over the limit", async () => {
      const r = await post({ tenant_id: "v", event_type: "a", payload: { blob: "x".repeat(200_000) } });
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe("payload_too_large");
    });
    it("answers 400 for malformed JSON", async () => {
      const r = await post('{"tenant_id": "v", "event_type": ');
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("invalid_json");
    });
    it("names the bad field of a batch item", async () => {
      const r = await h.api<{ error: { message: string } }>("POST", "/v1/events/batch", {
        events: [
          { tenant_id: "v", event_type: "a", payload: {} },
          { tenant_id: "v", payload: {} },
        ],
      });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toBe('missing required field "events.1.event_type"');
    });
    it("refuses a batch over 1,000 events", async () => {
      const events = Array.from({ length: 1001 }, () => ({ tenant_id: "v", event_type: "a", payload: {} }));
      const r = await h.api<{ error: { message: string } }>("POST", "/v1/events/batch", { events });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain("at most 1000");
    });
    it("requires a tenant_id with the admin token", async () => {
      const r = await post({ event_type: "a", payload: {} });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain("tenant_id");
    });
    it("answers 404 for an unknown event", async () => {
      const r = await h.api<{ error: { code: string } }>("GET", "/v1/events/999999");
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe("not_found");
    });
  });
});
