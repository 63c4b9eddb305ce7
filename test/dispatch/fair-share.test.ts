import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { Gate, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Sub {
  subscription_id: string;
  secret: string;
}

describe.each(STORE_KINDS)("fair share of POST slots on the %s store", (kind) => {
  let h: TestHerald;
  let rx: Receiver;
  const hang = new Gate();
  beforeAll(async () => {
    h = await startTestHerald(
      kind,
      { maxConcurrentPosts: 64, requestTimeoutMs: 120_000, leaseMs: 300_000 },
      { api: true, dispatcher: true },
    );
    rx = await new Receiver().start();
    // Every path but /healthy hangs until the test ends (longer than any wait below).
    rx.behaviour = async (r) => {
      if (r.path !== "/healthy") await hang.opened;
      return { status: 200 };
    };
  });
  afterAll(async () => {
    hang.open();
    await h?.close();
    await rx?.close();
  });

  const subscribe = async (tenant: string, path: string) => {
    const r = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: tenant,
      url: rx.url(path),
      event_types: ["*"],
      ordering: "unordered",
      max_in_flight: 1000,
    });
    expect(r.status).toBe(201);
    rx.trust(r.body.secret);
  };

  it("another tenant's event is delivered while four subscriptions hang with every slot they may take", async () => {
    for (let i = 0; i < 4; i++) await subscribe(`slow${i}`, `/slow${i}`);
    await subscribe("healthy", "/healthy");
    for (let i = 0; i < 4; i++) {
      const events = Array.from({ length: 40 }, (_, n) => ({
        tenant_id: `slow${i}`,
        event_type: "x",
        payload: { n },
      }));
      expect((await h.api("POST", "/v1/events/batch", { events })).status).toBe(202);
    }
    // Each hanging endpoint holds what it may: together every slot but the reserve of 8, which each of
    // them also dips into once, for its first POST.
    const slowSeen = () => new Set(rx.received.map((r) => r.path).filter((p) => p.startsWith("/slow"))).size;
    await rx.waitFor(
      () => slowSeen() === 4 && rx.open >= 56,
      60_000,
      "the slow endpoints to hold their slots",
    );
    await h.api("POST", "/v1/events", { tenant_id: "healthy", event_type: "x", payload: { ok: true } });
    // Long before any hanging request times out (120 s).
    await rx.waitFor((r) => r.some((x) => x.path === "/healthy"), 30_000, "the healthy tenant's event");
    expect(rx.maxOpen).toBeLessThanOrEqual(64);
  });
});
