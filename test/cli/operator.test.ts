import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { heraldAt } from "../support/cli.ts";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";

/** Runs `herald <args>` against the test server with the admin token. */
const herald = (h: TestHerald, ...args: string[]) => heraldAt(h.url, ADMIN, ...args);

describe("operator verbs of the CLI", () => {
  let h: TestHerald;
  let id: string;
  beforeAll(async () => {
    h = await startTestHerald("embedded");
    const s = await h.api<{ subscription_id: string }>("POST", "/v1/subscriptions", {
      tenant_id: "cli",
      url: "http://127.0.0.1:9/x",
      event_types: ["*"],
      ordering: "ordered",
    });
    id = s.body.subscription_id;
    await h.api("POST", "/v1/events", { tenant_id: "cli", event_type: "a", payload: { n: 1 } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("pauses and resumes with a reason, as JSON", async () => {
    const p = await herald(h, "pause", id, "--reason", "maintenance", "--json");
    expect(p.code).toBe(0);
    expect(JSON.parse(p.out)).toMatchObject({
      subscription_id: id,
      status: "paused",
      pause_reason: "manual",
    });
    const r = await herald(h, "resume", id, "--json");
    expect(JSON.parse(r.out)).toMatchObject({ status: "active", pause_reason: null });
    const a = await herald(h, "audit", "--subscription", id, "--json");
    const items = (JSON.parse(a.out) as { items: Array<{ action: string; reason: string | null }> }).items;
    expect(items.slice(0, 2).map((x) => x.action)).toEqual(["subscription.resumed", "subscription.paused"]);
    expect(items[1]!.reason).toBe("maintenance");
  });

  it("shows the head with its diagnosis, in text and JSON", async () => {
    const j = await herald(h, "head", id, "--json");
    const doc = JSON.parse(j.out) as { head: { event: { payload: unknown } }; diagnosis: { branch: string } };
    expect(doc.head.event.payload).toEqual({ n: 1 });
    expect(typeof doc.diagnosis.branch).toBe("string");
    const t = await herald(h, "head", id);
    expect(t.out).toContain("diagnosis:");
    expect(t.out).toContain('payload: {"n":1}');
  });

  it("drops the head with a reason, and explains a refusal with a non-zero exit", async () => {
    const d = await herald(h, "drop-head", id, "--reason", "bad data", "--json");
    expect(d.code).toBe(0);
    expect(JSON.parse(d.out)).toMatchObject({ moved_to_dlq: 1 });
    const again = await herald(h, "drop-head", id, "--reason", "bad data");
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/409.*empty/);
    const missing = await herald(h, "replay", "99999999");
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("404");
  });

  it("replays the DLQ once", async () => {
    const first = await herald(h, "replay", "--dlq", id, "--json");
    expect(JSON.parse(first.out)).toEqual({ queued: 1, more: false });
    const second = await herald(h, "replay", "--dlq", id, "--json");
    expect(JSON.parse(second.out)).toEqual({ queued: 0, more: false });
  });
});
