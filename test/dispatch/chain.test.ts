import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Gate, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
}

const counter = async (h: TestHerald, name: "chained" | "claims") =>
  (await h.proc.metrics[name].get()).values[0]?.value ?? 0;

describe.each(STORE_KINDS)(
  "an ordered queue's next head, claimed by its predecessor's record, on the %s store",
  (kind) => {
    let h: TestHerald;
    let rx: Receiver;
    beforeAll(async () => {
      h = await startTestHerald(
        kind,
        { requestTimeoutMs: 60_000, leaseMs: 300_000 },
        { api: true, dispatcher: true },
      );
      rx = await new Receiver().start();
    });
    afterAll(async () => {
      await h?.close();
      await rx?.close();
    });

    const subscribe = async (tenant: string) => {
      const r = await h.api<Sub>("POST", "/v1/subscriptions", {
        tenant_id: tenant,
        url: rx.url(`/${tenant}`),
        event_types: ["*"],
        ordering: "ordered",
      });
      expect(r.status).toBe(201);
      rx.trust(r.body.secret);
      return r.body;
    };
    const emit = (tenant: string, n: number) =>
      h.api("POST", "/v1/events/batch", {
        events: Array.from({ length: n }, (_, i) => ({ tenant_id: tenant, event_type: "x", payload: { i } })),
      });
    const seqOf = (tenant: string) =>
      rx.received.filter((r) => r.path === `/${tenant}`).map((r) => (r.body.data as { i: number }).i);

    it("sends a burst in order, nearly every head claimed by the record of the one before", async () => {
      await subscribe("burst");
      const chainedBefore = await counter(h, "chained");
      expect((await emit("burst", 60)).status).toBe(202);
      await rx.waitFor(() => seqOf("burst").length === 60, 60_000, "60 deliveries");
      expect(seqOf("burst")).toEqual(Array.from({ length: 60 }, (_, i) => i));
      // The first head is claimed by a claim; the others follow their predecessor's record (a few may be
      // taken by a claim that ran first, which is as correct).
      expect((await counter(h, "chained")) - chainedBefore).toBeGreaterThanOrEqual(30);
    });

    it("stops at a pause: the head after the pause is not chained, and goes after the resume, in order", async () => {
      const s = await subscribe("paused");
      const hold = new Gate();
      // The first POST is held until the subscription is paused.
      rx.behaviour = async (r) => {
        if (r.path === "/paused" && (r.body.data as { i: number }).i === 0) await hold.opened;
        return { status: 200 };
      };
      expect((await emit("paused", 5)).status).toBe(202);
      await rx.waitFor(() => seqOf("paused").length === 1, 30_000, "the first POST");
      const path = `/v1/subscriptions/${s.subscription_id}`;
      expect((await h.api("PATCH", path, { status: "paused" })).status).toBe(200);
      hold.open();
      // Its result recorded (the statement that would have chained the next head): nothing is in flight.
      await eventually(async () => {
        const v = await h.api<{ pending_count: number }>("GET", path);
        return v.body.pending_count === 4 ? true : undefined;
      });
      const out = await h.api<{ items: unknown[] }>(
        "GET",
        `/v1/deliveries?subscription_id=${s.subscription_id}&status=in_flight`,
      );
      expect(out.body.items).toEqual([]);
      expect((await h.api("PATCH", path, { status: "active" })).status).toBe(200);
      await rx.waitFor(() => seqOf("paused").length === 5, 30_000, "the rest after the resume");
      expect(seqOf("paused")).toEqual([0, 1, 2, 3, 4]);
    });
  },
);
