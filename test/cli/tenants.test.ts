import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { heraldAt } from "../support/cli.ts";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";

/** Runs `herald <args>` against the test server with `token`. */
const herald = (h: TestHerald, token: string, ...args: string[]) => heraldAt(h.url, token, ...args);

describe("herald tenants", () => {
  let h: TestHerald;
  let tenantToken: string;
  beforeAll(async () => {
    h = await startTestHerald("embedded", { maxSubscriptionsPerTenant: 1 });
    tenantToken = (await h.api<{ token: string }>("POST", "/v1/tokens", { tenant_id: "cli-t" })).body.token;
  });
  afterAll(async () => {
    await h?.close();
  });

  const create = () =>
    h.api("POST", "/v1/subscriptions", { url: "http://127.0.0.1:9/x", event_types: ["*"] }, tenantToken);

  it("set-limit raises a tenant's limit (audited), limits shows it, --default resets it", async () => {
    expect((await create()).status).toBe(201);
    expect((await create()).status).toBe(422);

    const set = await herald(
      h,
      ADMIN,
      "tenants",
      "set-limit",
      "cli-t",
      "--max-subscriptions",
      "2",
      "--reason",
      "pilot",
      "--json",
    );
    expect(set.code, set.err).toBe(0);
    expect(JSON.parse(set.out)).toEqual({
      tenant_id: "cli-t",
      max_subscriptions: 2,
      source: "tenant",
      subscriptions: 1,
    });
    expect((await create()).status).toBe(201);
    expect((await create()).status).toBe(422);

    const text = await herald(h, tenantToken, "tenants", "limits", "cli-t");
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/subscriptions\s+2\/2/);
    expect(text.out).toContain("tenant (set by the admin)");

    const reset = await herald(h, ADMIN, "tenants", "set-limit", "cli-t", "--default", "--json");
    expect(JSON.parse(reset.out)).toMatchObject({
      max_subscriptions: 1,
      source: "default",
      subscriptions: 2,
    });

    const audit = await h.api<{ items: Array<{ action: string; reason: string | null }> }>(
      "GET",
      "/v1/audit",
    );
    expect(audit.body.items.filter((a) => a.action === "tenant.limits_updated").map((a) => a.reason)).toEqual(
      [null, "pilot"],
    );
  });

  it("explains a refusal with a non-zero exit, as text and as JSON", async () => {
    const denied = await herald(h, tenantToken, "tenants", "set-limit", "cli-t", "--max-subscriptions", "50");
    expect(denied.code).toBe(1);
    expect(denied.err).toContain("403 forbidden");
    const json = await herald(
      h,
      ADMIN,
      "tenants",
      "set-limit",
      "cli-t",
      "--max-subscriptions",
      "2000000",
      "--json",
    );
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toEqual({
      error: {
        code: "out_of_range",
        message: expect.stringContaining("max_subscriptions must be between 0 and 1000000"),
      },
    });
    const neither = await herald(h, ADMIN, "tenants", "set-limit", "cli-t", "--json");
    expect(neither.code).toBe(1);
    expect(JSON.parse(neither.out).error.message).toContain("--max-subscriptions");
  });
});
