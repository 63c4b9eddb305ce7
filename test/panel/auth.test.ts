import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PanelAuth, SESSION_TTL_MS } from "../../src/panel/auth.ts";
import { safeBack } from "../../src/panel/forms.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";
import { PanelClient, visibleText } from "./client.ts";

interface Sub {
  subscription_id: string;
  status: string;
}

describe.each(STORE_KINDS)("panel login, session and CSRF on the %s store", (kind) => {
  let h: TestHerald;
  let sub: string;
  beforeAll(async () => {
    h = await startTestHerald(kind);
    const s = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "auth",
      url: "http://127.0.0.1:9/hook",
      event_types: ["*"],
    });
    sub = s.body.subscription_id;
  });
  afterAll(async () => {
    await h?.close();
  });

  const status = async () => (await h.api<Sub>("GET", `/v1/subscriptions/${sub}`)).body.status;

  it("sends a visitor without a session to the login form, and back where they were after it", async () => {
    const c = new PanelClient(h.url);
    for (const path of [
      "/webhooks",
      `/webhooks/${sub}`,
      "/webhooks/errors",
      "/webhooks/audit",
      "/webhooks/retriggers",
    ]) {
      const r = await c.get(path);
      expect(r.status, path).toBe(303);
      expect(r.headers.get("location")).toBe(`/webhooks/login?next=${encodeURIComponent(path)}`);
    }
    const form = await c.get("/webhooks/login?next=%2Fwebhooks%2Faudit");
    expect(form.status).toBe(200);
    expect(form.text).toContain('<label for="token">');
    expect(form.text).toContain('value="/webhooks/audit"');
    const r = await c.post("/webhooks/login", { token: h.proc.adminToken, next: "/webhooks/audit" });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/webhooks/audit");
  });

  it("a polled fragment without a session answers 401 and tells htmx to go to the login page", async () => {
    const r = await new PanelClient(h.url).get("/webhooks/fragments/subscriptions", {
      "hx-request": "true",
      "hx-current-url": `${h.url}/webhooks?status=paused`,
    });
    expect(r.status).toBe(401);
    expect(r.headers.get("hx-redirect")).toBe(
      `/webhooks/login?next=${encodeURIComponent("/webhooks?status=paused")}`,
    );
  });

  it("refuses a wrong token, and a tenant token, with a message and no cookie", async () => {
    const c = new PanelClient(h.url);
    const wrong = await c.post("/webhooks/login", { token: "not-the-admin-token-at-all" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(visibleText(wrong.text)).toContain("That is not the admin token.");
    const tenant = await h.api<{ token: string }>("POST", "/v1/tokens", { tenant_id: "auth" });
    const t = await c.post("/webhooks/login", { token: tenant.body.token });
    expect(t.status).toBe(401);
    const empty = await c.post("/webhooks/login", { token: "" });
    expect(empty.status).toBe(400);
    expect(visibleText(empty.text)).toContain("Enter the admin token.");
  });

  it("sets the session cookie HttpOnly, SameSite=Strict, Path=/webhooks, with an expiry", async () => {
    const c = new PanelClient(h.url);
    const r = await c.login(h.proc.adminToken);
    const cookie = r.headers.get("set-cookie") ?? "";
    const attrs = cookie.split(";").map((a) => a.trim());
    expect(attrs[0]).toMatch(/^herald_panel=v1\.[0-9a-z]+\.[\w-]+\.[\w-]+$/);
    expect(attrs).toContain("HttpOnly");
    expect(attrs).toContain("SameSite=Strict");
    expect(attrs).toContain("Path=/webhooks");
    expect(attrs).toContain(`Max-Age=${SESSION_TTL_MS / 1000}`);
    // The admin token itself is never in the cookie.
    expect(cookie).not.toContain(h.proc.adminToken);
    expect((await c.get("/webhooks")).status).toBe(200);
  });

  it("refuses a forged or altered session cookie", async () => {
    const c = new PanelClient(h.url);
    await c.login(h.proc.adminToken);
    const good = c.cookie!;
    const [name, value] = good.split("=") as [string, string];
    const parts = value.split(".");
    for (const forged of [
      `${name}=${parts[0]}.${parts[1]}.${parts[2]}.AAAA`,
      `${name}=${parts[0]}.${(Number.parseInt(parts[1]!, 36) + 1).toString(36)}.${parts[2]}.${parts[3]}`,
      `${name}=garbage`,
    ]) {
      c.cookie = forged;
      expect((await c.get("/webhooks")).status).toBe(303);
    }
  });

  it("changes nothing on a POST without the session's CSRF token", async () => {
    const a = new PanelClient(h.url);
    const b = new PanelClient(h.url);
    await a.login(h.proc.adminToken);
    await b.login(h.proc.adminToken);
    const none = await a.post(`/webhooks/${sub}/pause`, {});
    expect(none.status).toBe(403);
    expect(visibleText(none.text)).toContain("CSRF check failed");
    const wrong = await a.post(`/webhooks/${sub}/pause`, { _csrf: "x".repeat(43) });
    expect(wrong.status).toBe(403);
    // Another session's token is not this session's.
    const other = await a.post(`/webhooks/${sub}/pause`, { _csrf: await b.csrf() });
    expect(other.status).toBe(403);
    // Not even logout goes through without it.
    expect((await a.post("/webhooks/logout", {})).status).toBe(403);
    expect(await status()).toBe("active");
    const ok = await a.submit(`/webhooks/${sub}/pause`, { back: "/webhooks" });
    expect(ok.status).toBe(303);
    expect(await status()).toBe("paused");
    expect((await a.submit(`/webhooks/${sub}/resume`, {})).status).toBe(303);
    expect(await status()).toBe("active");
  });

  it("never changes anything on a GET", async () => {
    const c = new PanelClient(h.url);
    await c.login(h.proc.adminToken);
    const before = (await h.api<{ items: unknown[] }>("GET", `/v1/audit?subscription_id=${sub}`)).body.items
      .length;
    for (const path of [
      `/webhooks/${sub}/pause`,
      `/webhooks/${sub}/drop`,
      `/webhooks/${sub}/rotate-secret`,
    ]) {
      const r = await c.get(path);
      expect(r.status, path).toBe(303);
      expect(r.headers.get("location")).toBe(`/webhooks/${sub}`);
    }
    expect(await status()).toBe("active");
    const after = (await h.api<{ items: unknown[] }>("GET", `/v1/audit?subscription_id=${sub}`)).body.items
      .length;
    expect(after).toBe(before);
  });

  it("logout clears the cookie, and this process refuses the old session afterwards", async () => {
    const c = new PanelClient(h.url);
    await c.login(h.proc.adminToken);
    const old = c.cookie;
    const r = await c.submit("/webhooks/logout", {});
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/webhooks/login?logged_out=1");
    expect(r.headers.get("set-cookie")).toMatch(
      /^herald_panel=; Path=\/webhooks; HttpOnly; SameSite=Strict; Max-Age=0/,
    );
    c.cookie = old;
    expect((await c.get("/webhooks")).status).toBe(303);
  });

  it("sends a content security policy and keeps pages out of caches", async () => {
    const c = new PanelClient(h.url);
    await c.login(h.proc.adminToken);
    const r = await c.get("/webhooks");
    expect(r.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(r.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const js = await c.get("/webhooks/assets/htmx.min.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("text/javascript");
    expect(js.text).toContain("htmx");
    expect((await c.get("/webhooks/assets/panel.css")).status).toBe(200);
  });

  it("keeps the panel out of the API's OpenAPI document", async () => {
    const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith("/webhooks"))).toEqual([]);
    expect(Object.keys(doc.paths)).toContain("/v1/subscriptions");
  });
});

describe("panel sessions (unit)", () => {
  it("expire after the session lifetime and do not survive a change of admin token", () => {
    let now = 1_700_000_000_000;
    const auth = new PanelAuth("admin-token-one-0123456789", () => now);
    const { cookie, session } = auth.issue();
    expect(auth.verify(cookie)?.csrf).toBe(session.csrf);
    expect(auth.checkCsrf(session, session.csrf)).toBe(true);
    expect(auth.checkCsrf(session, undefined)).toBe(false);
    expect(new PanelAuth("admin-token-two-0123456789", () => now).verify(cookie)).toBeNull();
    now += SESSION_TTL_MS + 1;
    expect(auth.verify(cookie)).toBeNull();
  });

  it("sends the browser back only to panel paths", () => {
    expect(safeBack("/webhooks?status=paused", "/x")).toBe("/webhooks?status=paused");
    expect(safeBack("/webhooks/sub_1", "/x")).toBe("/webhooks/sub_1");
    for (const bad of [
      "https://evil.example/",
      "//evil.example/webhooks",
      "/webhooksevil",
      "/webhooks//evil",
      "/v1/audit",
      "/webhooks\\x",
    ]) {
      expect(safeBack(bad, "/x"), bad).toBe("/x");
    }
  });
});
