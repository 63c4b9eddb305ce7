import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Err {
  error: { code: string; message: string };
}
interface Sub {
  subscription_id: string;
  tenant_id: string;
  status: string;
  pause_reason: string | null;
  pending_ceiling: number;
  secret?: string;
}
interface Audit {
  items: Array<{
    actor: string;
    action: string;
    tenant_id: string | null;
    subscription_id: string | null;
    reason: string | null;
    before: unknown;
    after: unknown;
  }>;
}

describe.each(STORE_KINDS)("subscriptions, tokens and audit on the %s store", (kind) => {
  let h: TestHerald;
  let strict: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald(kind);
    strict = await startTestHerald(kind, { allowPrivateTargets: false });
  });
  afterAll(async () => {
    await h?.close();
    await strict?.close();
  });

  const create = (body: Record<string, unknown>, token?: string, on = h) =>
    on.api<Sub & Err>(
      "POST",
      "/v1/subscriptions",
      { url: "http://127.0.0.1:9/hook", event_types: ["a"], ...body },
      token,
    );

  it("shows the secret once, at creation", async () => {
    const r = await create({ tenant_id: "s1" });
    expect(r.status).toBe(201);
    expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{32,}$/);
    const got = await h.api<Sub>("GET", `/v1/subscriptions/${r.body.subscription_id}`);
    expect(got.body).not.toHaveProperty("secret");
    expect(got.body).toMatchObject({ status: "active", pause_reason: null, pending_count: 0, dlq_count: 0 });
    const list = await h.api<{ items: Sub[] }>("GET", "/v1/subscriptions?tenant_id=s1");
    expect(list.body.items.every((s) => !("secret" in s))).toBe(true);
  });

  it("refuses URLs that are not http(s), and private targets unless allowed", async () => {
    const ftp = await create({ tenant_id: "s1", url: "ftp://example.com/x" });
    expect(ftp.status).toBe(422);
    expect(ftp.body.error.message).toContain("url");
    for (const url of [
      "http://127.0.0.1:8080/x",
      "http://localhost/x",
      "http://10.1.2.3/x",
      "http://[::1]/x",
    ]) {
      const r = await create({ tenant_id: "s1", url }, undefined, strict);
      expect(r.status, url).toBe(422);
      expect(r.body.error.code).toBe("invalid_url");
    }
    expect(
      (await create({ tenant_id: "s1", url: "https://hooks.example.com/x" }, undefined, strict)).status,
    ).toBe(201);
  });

  it("refuses a ceiling outside [100, DISPATCHER_MAX_PENDING_HARD_CAP] with 422 naming the bound", async () => {
    const low = await create({ tenant_id: "s1", pending_ceiling: 99 });
    expect(low.status).toBe(422);
    expect(low.body.error.message).toMatch(/pending_ceiling.*100.*50000/);
    const high = await create({ tenant_id: "s1", dlq_ceiling: 50001 });
    expect(high.status).toBe(422);
    expect(high.body.error.message).toMatch(/dlq_ceiling.*50000.*DISPATCHER_MAX_PENDING_HARD_CAP/);
    const ok = await create({ tenant_id: "s1", pending_ceiling: 100 });
    expect(ok.status).toBe(201);
    const patch = await h.api<Err>("PATCH", `/v1/subscriptions/${ok.body.subscription_id}`, {
      pending_ceiling: 60000,
    });
    expect(patch.status).toBe(422);
  });

  it("pauses (manual) and resumes through PATCH, each with an audit row and diff", async () => {
    const { body: s } = await create({ tenant_id: "s2", ordering: "ordered" });
    const p = await h.api<Sub>("PATCH", `/v1/subscriptions/${s.subscription_id}`, {
      status: "paused",
      reason: "maintenance",
    });
    expect(p.body).toMatchObject({ status: "paused", pause_reason: "manual" });
    const r = await h.api<Sub>("PATCH", `/v1/subscriptions/${s.subscription_id}`, { status: "active" });
    expect(r.body).toMatchObject({ status: "active", pause_reason: null });
    const c = await h.api<Sub>("PATCH", `/v1/subscriptions/${s.subscription_id}`, { pending_ceiling: 500 });
    expect(c.body.pending_ceiling).toBe(500);
    const audit = await h.api<Audit>("GET", `/v1/audit?subscription_id=${s.subscription_id}`);
    expect(audit.body.items.map((a) => a.action)).toEqual([
      "subscription.updated",
      "subscription.resumed",
      "subscription.paused",
      "subscription.created",
    ]);
    const [updated, resumed, paused] = audit.body.items;
    expect(paused).toMatchObject({
      actor: "admin",
      reason: "maintenance",
      before: { status: "active", pause_reason: null },
      after: { status: "paused", pause_reason: "manual" },
    });
    expect(resumed).toMatchObject({
      before: { status: "paused", pause_reason: "manual" },
      after: { status: "active" },
    });
    expect(updated).toMatchObject({ before: { pending_ceiling: 10000 }, after: { pending_ceiling: 500 } });
  });

  it("deletes: the subscription answers 404 afterwards and the deletion is audited", async () => {
    const { body: s } = await create({ tenant_id: "s3" });
    expect(
      (await h.api("POST", "/v1/events", { tenant_id: "s3", event_type: "a", payload: {} })).status,
    ).toBe(202);
    expect((await h.api("DELETE", `/v1/subscriptions/${s.subscription_id}`)).status).toBe(204);
    expect((await h.api("GET", `/v1/subscriptions/${s.subscription_id}`)).status).toBe(404);
    const audit = await h.api<Audit>("GET", `/v1/audit?subscription_id=${s.subscription_id}`);
    expect(audit.body.items[0]).toMatchObject({
      action: "subscription.deleted",
      after: { deleted: true, queued_deliveries_moved_to_dlq: 1 },
    });
  });

  it("confines a tenant token to its tenant: other tenants' ids answer 404", async () => {
    const tokA = await h.api<{ token: string; token_id: string }>("POST", "/v1/tokens", {
      tenant_id: "ta",
      name: "ci",
    });
    expect(tokA.status).toBe(201);
    expect(tokA.body.token).toMatch(/^hrd_/);
    const a = tokA.body.token;
    const mine = await create({}, a);
    expect(mine.status).toBe(201);
    expect(mine.body.tenant_id).toBe("ta");
    const { body: theirs } = await create({ tenant_id: "tb" });

    expect((await h.api("GET", `/v1/subscriptions/${theirs.subscription_id}`, undefined, a)).status).toBe(
      404,
    );
    expect(
      (await h.api("PATCH", `/v1/subscriptions/${theirs.subscription_id}`, { status: "paused" }, a)).status,
    ).toBe(404);
    expect((await h.api("DELETE", `/v1/subscriptions/${theirs.subscription_id}`, undefined, a)).status).toBe(
      404,
    );
    const list = await h.api<{ items: Sub[] }>("GET", "/v1/subscriptions", undefined, a);
    expect(list.body.items.map((s) => s.tenant_id)).toEqual(["ta"]);

    const evB = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "tb",
      event_type: "a",
      payload: {},
    });
    expect((await h.api("GET", `/v1/events/${evB.body.event_id}`, undefined, a)).status).toBe(404);
    const evA = await h.api<{ event_id: number }>("POST", "/v1/events", { event_type: "a", payload: {} }, a);
    expect(evA.status).toBe(202);
    expect((await h.api("GET", `/v1/events/${evA.body.event_id}`, undefined, a)).status).toBe(200);
    const spoof = await h.api<Err>(
      "POST",
      "/v1/events",
      { tenant_id: "tb", event_type: "a", payload: {} },
      a,
    );
    expect(spoof.status).toBe(403);

    expect((await h.api("POST", "/v1/tokens", { tenant_id: "tb" }, a)).status).toBe(403);
    const audit = await h.api<Audit>("GET", "/v1/audit", undefined, a);
    expect(audit.body.items.length).toBeGreaterThan(0);
    expect(audit.body.items.every((x) => x.tenant_id === "ta")).toBe(true);
    expect(audit.body.items.some((x) => x.subscription_id === theirs.subscription_id)).toBe(false);
    const created = audit.body.items.find((x) => x.action === "subscription.created");
    expect(created?.actor).toBe(`token:${tokA.body.token_id}`);
  });

  it("answers 401 without a token or with an unknown one", async () => {
    const none = await fetch(`${h.url}/v1/subscriptions`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as Err).error.code).toBe("unauthorized");
    expect((await h.api("GET", "/v1/subscriptions", undefined, "hrd_nope")).status).toBe(401);
  });

  it("serves health, readiness and an OpenAPI document generated from the routes", async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", checks: { store: true } });
    const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of [
      "/v1/events",
      "/v1/events/batch",
      "/v1/subscriptions/{id}",
      "/v1/tokens",
      "/v1/audit",
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
  });
});
