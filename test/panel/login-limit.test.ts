import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoginLimit } from "../../src/domain/login-limit.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { PanelClient, visibleText } from "./client.ts";

describe("failed-login limit (pure)", () => {
  it("refuses an address after 10 wrong tokens until its 15-minute window ends; a success clears it", () => {
    const l = new LoginLimit();
    for (let i = 0; i < 9; i++) l.failed("a", 1000 + i);
    expect(l.retryAfterMs("a", 2000)).toBe(0);
    l.failed("a", 2000);
    expect(l.retryAfterMs("a", 2000)).toBe(1000 + 15 * 60_000 - 2000);
    expect(l.retryAfterMs("b", 2000)).toBe(0);
    expect(l.retryAfterMs("a", 1000 + 15 * 60_000)).toBe(0);
    for (let i = 0; i < 10; i++) l.failed("c", 0);
    l.succeeded("c");
    expect(l.retryAfterMs("c", 1)).toBe(0);
  });

  it("tracks at most maxClients addresses, forgetting the oldest first", () => {
    const l = new LoginLimit({ maxFailures: 1, windowMs: 60_000, maxClients: 3 });
    for (const ip of ["1", "2", "3", "4"]) l.failed(ip, 0);
    expect(l.retryAfterMs("1", 1)).toBe(0);
    expect(l.retryAfterMs("4", 1)).toBe(59_999);
  });
});

describe("panel login behind a proxy (HERALD_TRUST_PROXY=true)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald("embedded", { trustProxy: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("after 10 wrong tokens from one client the next wrong one is a 429 with Retry-After; other clients are not affected", async () => {
    const c = new PanelClient(h.url);
    const from = { "x-forwarded-for": "203.0.113.7" };
    for (let i = 0; i < 10; i++) {
      const r = await c.post("/webhooks/login", { token: `wrong-token-number-${i}` }, from);
      expect(r.status).toBe(401);
    }
    const blocked = await c.post("/webhooks/login", { token: "wrong-token-number-10" }, from);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(blocked.headers.get("set-cookie")).toBeNull();
    expect(visibleText(blocked.text)).toContain("Too many wrong tokens from this address");
    const other = await c.post(
      "/webhooks/login",
      { token: "wrong-token-elsewhere" },
      { "x-forwarded-for": "203.0.113.8" },
    );
    expect(other.status).toBe(401);
  });

  // Regression (issue 18, item 10): the lockout used to refuse the right token too, so anyone sharing
  // the operator's address (or a proxy without HERALD_TRUST_PROXY) could lock the operator out.
  it("never locks out the right token: it logs in from a locked address and clears the count", async () => {
    const c = new PanelClient(h.url);
    const from = { "x-forwarded-for": "203.0.113.20" };
    for (let i = 0; i < 11; i++) await c.post("/webhooks/login", { token: `guess-${i}` }, from);
    expect((await c.post("/webhooks/login", { token: "guess-11" }, from)).status).toBe(429);
    const right = await c.post("/webhooks/login", { token: h.proc.adminToken }, from);
    expect(right.status).toBe(303);
    expect(right.headers.get("set-cookie")).toMatch(/^herald_panel=v1\./);
    // The count starts again: ten more wrong tokens answer 401 before the next 429.
    for (let i = 0; i < 10; i++) {
      expect((await c.post("/webhooks/login", { token: `again-${i}` }, from)).status).toBe(401);
    }
    expect((await c.post("/webhooks/login", { token: "again-10" }, from)).status).toBe(429);
  });

  it("marks the session cookie Secure when the proxy says the client came over https", async () => {
    const c = new PanelClient(h.url);
    const https = await c.post(
      "/webhooks/login",
      { token: h.proc.adminToken },
      { "x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https" },
    );
    expect(https.status).toBe(303);
    expect(https.headers.get("set-cookie")).toMatch(/; Secure/);
    const plain = await c.post(
      "/webhooks/login",
      { token: h.proc.adminToken },
      { "x-forwarded-for": "203.0.113.9" },
    );
    expect(plain.headers.get("set-cookie")).not.toMatch(/Secure/);
  });
});
