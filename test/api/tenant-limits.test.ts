import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Err {
  error: { code: string; message: string };
}
interface Sub {
  subscription_id: string;
}
interface Limits {
  tenant_id: string;
  max_subscriptions: number;
  source: "tenant" | "default";
  subscriptions: number;
}
interface Audit {
  items: Array<{
    actor: string;
    action: string;
    tenant_id: string | null;
    reason: string | null;
    before: unknown;
    after: unknown;
  }>;
}

const DEFAULT_LIMIT = 3;

describe.each(STORE_KINDS)("per-tenant subscription limits on the %s store", (kind) => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald(kind, { maxSubscriptionsPerTenant: DEFAULT_LIMIT });
  });
  afterAll(async () => {
    await h?.close();
  });

  const tokenFor = async (tenant: string) => {
    const r = await h.api<{ token: string }>("POST", "/v1/tokens", { tenant_id: tenant });
    expect(r.status).toBe(201);
    return r.body.token;
  };
  const create = (tenant: string, token?: string) =>
    h.api<Sub & Err>(
      "POST",
      "/v1/subscriptions",
      { url: "http://127.0.0.1:9/hook", event_types: ["*"], ...(token ? {} : { tenant_id: tenant }) },
      token,
    );
  const live = async (tenant: string) =>
    (await h.api<{ items: Sub[] }>("GET", `/v1/subscriptions?tenant_id=${tenant}&limit=500`)).body.items
      .length;

  it("refuses one more than the environment's limit with 422 naming it; deleted ones do not count", async () => {
    const token = await tokenFor("lim1");
    const made: string[] = [];
    for (let i = 0; i < DEFAULT_LIMIT; i++) {
      const r = await create("lim1", token);
      expect(r.status).toBe(201);
      made.push(r.body.subscription_id);
    }
    const over = await create("lim1", token);
    expect(over.status).toBe(422);
    expect(over.body.error.code).toBe("limit_exceeded");
    expect(over.body.error.message).toContain("max_subscriptions is 3");
    expect(over.body.error.message).toContain("HERALD_MAX_SUBSCRIPTIONS_PER_TENANT");
    expect(await live("lim1")).toBe(DEFAULT_LIMIT);

    // Another tenant has its own count.
    expect((await create("lim1-other")).status).toBe(201);

    expect((await h.api("DELETE", `/v1/subscriptions/${made[0]}`, undefined, token)).status).toBe(204);
    expect((await create("lim1", token)).status).toBe(201);
    expect((await create("lim1", token)).status).toBe(422);

    const mine = await h.api<Limits>("GET", "/v1/tenants/lim1/limits", undefined, token);
    expect(mine.status).toBe(200);
    expect(mine.body).toEqual({
      tenant_id: "lim1",
      max_subscriptions: 3,
      source: "default",
      subscriptions: 3,
    });
  });

  it("the admin raises (and resets) a tenant's limit, with an audit row; a tenant token cannot", async () => {
    const token = await tokenFor("lim2");
    for (let i = 0; i < DEFAULT_LIMIT; i++) expect((await create("lim2", token)).status).toBe(201);
    expect((await create("lim2", token)).status).toBe(422);

    const byTenant = await h.api<Err>("PUT", "/v1/tenants/lim2/limits", { max_subscriptions: 50 }, token);
    expect(byTenant.status).toBe(403);
    expect(byTenant.body.error.code).toBe("forbidden");
    const peek = await h.api<Err>("GET", "/v1/tenants/lim1/limits", undefined, token);
    expect(peek.status).toBe(403);

    const raised = await h.api<Limits>("PUT", "/v1/tenants/lim2/limits", {
      max_subscriptions: 5,
      reason: "bigger plan",
    });
    expect(raised.status).toBe(200);
    expect(raised.body).toEqual({
      tenant_id: "lim2",
      max_subscriptions: 5,
      source: "tenant",
      subscriptions: 3,
    });
    expect((await create("lim2", token)).status).toBe(201);
    expect((await create("lim2", token)).status).toBe(201);
    const over = await create("lim2", token);
    expect(over.status).toBe(422);
    expect(over.body.error.message).toContain("max_subscriptions is 5 (set for this tenant by the admin)");

    const audit = await h.api<Audit>("GET", "/v1/audit?limit=500");
    const row = audit.body.items.find((a) => a.action === "tenant.limits_updated" && a.tenant_id === "lim2");
    expect(row).toMatchObject({
      actor: "admin",
      reason: "bigger plan",
      before: { max_subscriptions: 3, source: "default" },
      after: { max_subscriptions: 5, source: "tenant" },
    });

    // Lowered under the count: the existing ones stay, new ones are refused.
    const lowered = await h.api<Limits>("PUT", "/v1/tenants/lim2/limits", { max_subscriptions: 0 });
    expect(lowered.body).toMatchObject({ max_subscriptions: 0, subscriptions: 5 });
    expect(await live("lim2")).toBe(5);
    expect((await create("lim2", token)).status).toBe(422);

    const reset = await h.api<Limits>("DELETE", "/v1/tenants/lim2/limits?reason=plan%20ended");
    expect(reset.body).toEqual({
      tenant_id: "lim2",
      max_subscriptions: 3,
      source: "default",
      subscriptions: 5,
    });
    expect((await h.api("DELETE", "/v1/tenants/lim2/limits", undefined, token)).status).toBe(403);
    const resetRow = (await h.api<Audit>("GET", "/v1/audit?limit=500")).body.items.find(
      (a) => a.action === "tenant.limits_updated" && a.reason === "plan ended",
    );
    expect(resetRow).toMatchObject({
      before: { max_subscriptions: 0, source: "tenant" },
      after: { max_subscriptions: 3, source: "default" },
    });
  });

  it("refuses bad limits with a 4xx naming the field", async () => {
    for (const [body, status, code, named] of [
      [{ max_subscriptions: -1 }, 422, "out_of_range", "max_subscriptions"],
      [{ max_subscriptions: 1_000_001 }, 422, "out_of_range", "1000000"],
      [{ max_subscriptions: 1.5 }, 400, "invalid_field", "max_subscriptions"],
      [{}, 400, "invalid_field", "max_subscriptions"],
      [{ max_subscriptions: 5, colour: "red" }, 400, "unknown_field", "colour"],
    ] as const) {
      const r = await h.api<Err>("PUT", "/v1/tenants/lim3/limits", body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.error.code, JSON.stringify(body)).toBe(code);
      expect(r.body.error.message, JSON.stringify(body)).toContain(named);
    }
    expect((await h.api<Limits>("GET", "/v1/tenants/lim3/limits")).body.source).toBe("default");
  });

  it("is exact under concurrency: 20 creates at once against a limit of 5 make exactly 5", async () => {
    expect((await h.api("PUT", "/v1/tenants/lim4/limits", { max_subscriptions: 5 })).status).toBe(200);
    const answers = await Promise.all(Array.from({ length: 20 }, () => create("lim4")));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.filter((s) => s === 422)).toHaveLength(15);
    expect(answers.filter((a) => a.status === 422).every((a) => a.body.error.code === "limit_exceeded")).toBe(
      true,
    );
    expect(await live("lim4")).toBe(5);
  });
});
