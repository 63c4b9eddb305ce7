import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import { testSettings } from "../../src/config.ts";
import { NO_HOOKS } from "../../src/service/context.ts";
import { SecretBox } from "../../src/store/secret-box.ts";
import { cliEnv, runHerald } from "../support/cli.ts";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { freePort } from "../support/port.ts";
import { createTestStore, STORE_KINDS } from "../support/store.ts";
import { rawHttp, rawRequest } from "./raw-http.ts";

interface Err {
  error: { code: string; message: string };
}

function expectErrorShape(body: string, code: string): void {
  const parsed = JSON.parse(body) as Err;
  expect(Object.keys(parsed)).toEqual(["error"]);
  expect(parsed.error.code).toBe(code);
  expect(typeof parsed.error.message).toBe("string");
  expect(parsed.error.message.length).toBeGreaterThan(0);
}

describe.each(STORE_KINDS)("authentication on the %s store", (kind) => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald(kind);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe("a percent-encoded /v1 path is authenticated like the plain one (issue 18, item 1)", () => {
    const spellings = [
      "/%761/subscriptions",
      "/v%31/subscriptions",
      "/%76%31/subscriptions",
      "/v1/subscripti%6Fns",
      "/v1/subscripti%6fns",
      "/%76%31/%73%75%62%73%63%72%69%70%74%69%6F%6E%73",
    ];

    it.each(spellings)("GET %s without a token answers 401, with the admin token 200", async (path) => {
      const anonymous = await rawRequest(h.url, "GET", path);
      expect(anonymous.status).toBe(401);
      expectErrorShape(anonymous.body, "unauthorized");
      const admin = await rawRequest(h.url, "GET", path, { Authorization: `Bearer ${ADMIN}` });
      expect(admin.status).toBe(200);
    });

    it.each(["/%761", "/v%31", "/%76%31"])(
      "POST %s/tokens without a token answers 401 and makes no token",
      async (v1) => {
        const r = await rawRequest(
          h.url,
          "POST",
          `${v1}/tokens`,
          {},
          JSON.stringify({ tenant_id: "bypass" }),
        );
        expect(r.status).toBe(401);
        expectErrorShape(r.body, "unauthorized");
        const wrong = await rawRequest(
          h.url,
          "POST",
          `${v1}/tokens`,
          { Authorization: "Bearer hrd_not-a-token" },
          JSON.stringify({ tenant_id: "bypass" }),
        );
        expect(wrong.status).toBe(401);
        const audit = await h.api<{ items: Array<{ action: string; tenant_id: string | null }> }>(
          "GET",
          "/v1/audit?limit=500",
        );
        expect(audit.body.items.filter((a) => a.tenant_id === "bypass")).toEqual([]);
      },
    );

    it("a percent-encoded panel path needs a session too", async () => {
      for (const path of ["/%77ebhooks/subscriptions", "/webhook%73", "/%77%65bhooks/audit"]) {
        const r = await rawRequest(h.url, "GET", path);
        expect(r.status, path).toBe(303);
        expect(r.headers.location, path).toMatch(/^\/webhooks\/login\?next=/);
      }
      const post = await rawHttp(
        h.url,
        "POST /%77ebhooks/subscriptions/sub_x/pause HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
          "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nreason=xx",
      );
      expect(post.status).toBe(401);
    });
  });

  describe("errors before routing have the {error:{code,message}} shape (issue 18, item 5)", () => {
    it("answers a path that is not valid percent-encoding with 400 bad_request", async () => {
      for (const path of ["/v1/subscriptions/%FF", "/v1/subscriptions/%E0%A4%A", "/webhooks/%C0"]) {
        const r = await rawRequest(h.url, "GET", path, { Authorization: `Bearer ${ADMIN}` });
        expect(r.status, path).toBe(400);
        expectErrorShape(r.body, "bad_request");
      }
    });

    it("answers an over-long path parameter with 414 uri_too_long", async () => {
      const r = await rawRequest(h.url, "GET", `/v1/subscriptions/sub_${"x".repeat(300)}`, {
        Authorization: `Bearer ${ADMIN}`,
      });
      expect(r.status).toBe(414);
      expectErrorShape(r.body, "uri_too_long");
    });

    it("answers 20 KB of headers with 431 headers_too_large", async () => {
      const r = await rawRequest(h.url, "GET", "/v1/subscriptions", {
        Authorization: `Bearer ${ADMIN}`,
        "X-Padding": "a".repeat(20 * 1024),
      });
      expect(r.status).toBe(431);
      expect(r.headers["content-type"]).toMatch(/^application\/json/);
      expectErrorShape(r.body, "headers_too_large");
    });

    it("answers a request the HTTP parser cannot read with 400 bad_request", async () => {
      const r = await rawHttp(h.url, "NOT AN HTTP REQUEST\r\n\r\n");
      expect(r.status).toBe(400);
      expectErrorShape(r.body, "bad_request");
    });
  });
});

describe.each(STORE_KINDS)(
  "failed bearer authentications are rate-limited per client (issue 18, item 10) on the %s store",
  (kind) => {
    let h: TestHerald;
    let tenantToken: string;
    beforeAll(async () => {
      // A window far longer than the test, so that it cannot end in the middle of it.
      h = await startTestHerald(kind, {
        trustProxy: true,
        authFailureLimit: 5,
        authFailureWindowMs: 3_600_000,
      });
      const t = await h.api<{ token: string }>("POST", "/v1/tokens", { tenant_id: "limited" });
      tenantToken = t.body.token;
    });
    afterAll(async () => {
      await h?.close();
    });

    const from = (ip: string) => ({ "x-forwarded-for": ip });

    it("answers 401 to the first 5 wrong tokens, then 429 with Retry-After in the error shape", async () => {
      for (let i = 0; i < 5; i++) {
        const r = await h.api<Err>(
          "GET",
          "/v1/subscriptions",
          undefined,
          `hrd_guess_${i}`,
          from("198.51.100.1"),
        );
        expect(r.status).toBe(401);
      }
      for (const guess of ["hrd_guess_5", "not-even-a-tenant-token"]) {
        const res = await fetch(`${h.url}/v1/subscriptions`, {
          headers: { authorization: `Bearer ${guess}`, ...from("198.51.100.1") },
        });
        expect(res.status).toBe(429);
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        expectErrorShape(await res.text(), "rate_limited");
      }
    });

    it("still accepts a correct token from a limited address, and limits only that address", async () => {
      for (let i = 0; i < 6; i++) {
        await h.api("GET", "/v1/subscriptions", undefined, `hrd_other_${i}`, from("198.51.100.2"));
      }
      expect(
        (await h.api("GET", "/v1/subscriptions", undefined, "hrd_more", from("198.51.100.2"))).status,
      ).toBe(429);
      expect((await h.api("GET", "/v1/subscriptions", undefined, ADMIN, from("198.51.100.2"))).status).toBe(
        200,
      );
      expect(
        (await h.api("GET", "/v1/subscriptions", undefined, tenantToken, from("198.51.100.2"))).status,
      ).toBe(200);
      // A success does not clear the count (a tenant could otherwise interleave guesses with its token).
      expect(
        (await h.api("GET", "/v1/subscriptions", undefined, "hrd_after", from("198.51.100.2"))).status,
      ).toBe(429);
      expect(
        (await h.api("GET", "/v1/subscriptions", undefined, "hrd_guess", from("198.51.100.3"))).status,
      ).toBe(401);
    });

    it("never limits successful authentications", async () => {
      for (let i = 0; i < 20; i++) {
        expect((await h.api("GET", "/v1/subscriptions", undefined, ADMIN, from("198.51.100.4"))).status).toBe(
          200,
        );
      }
    });
  },
);

describe("HERALD_METRICS_TOKEN (issue 18, item 11)", () => {
  let open: TestHerald;
  let guarded: TestHerald;
  const METRICS = "metrics-scrape-token-0123456789";
  beforeAll(async () => {
    open = await startTestHerald("embedded");
    guarded = await startTestHerald("embedded", { metricsToken: METRICS });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  it("leaves /metrics open when unset", async () => {
    const r = await fetch(`${open.url}/metrics`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain("herald_deliveries_total");
  });

  it("requires the bearer token when set: none or a wrong one (the admin token too) is a 401", async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: "Bearer wrong-metrics-token" },
      { authorization: `Bearer ${ADMIN}` },
    ];
    for (const headers of attempts) {
      const r = await fetch(`${guarded.url}/metrics`, { headers });
      expect(r.status).toBe(401);
      expectErrorShape(await r.text(), "unauthorized");
    }
    const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("herald_deliveries_total");
    const encoded = await rawRequest(guarded.url, "GET", "/%6detrics");
    expect(encoded.status).toBe(401);
  });
});

describe("a weak admin token stops `herald start` (issue 18, item 10)", () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "herald-weak-token-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("refuses HERALD_ADMIN_TOKEN=aaaaaaaaaaaaaaaa with exit 2 and a message naming the variable", async () => {
    const env = { ...cliEnv(dataDir(), await freePort()), HERALD_ADMIN_TOKEN: "aaaaaaaaaaaaaaaa" };
    const run = await runHerald(["start"], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("HERALD_ADMIN_TOKEN must be at least 32 characters long");
  });

  it("refuses a short token kept in the data directory", async () => {
    const dir = dataDir();
    fs.writeFileSync(path.join(dir, "admin-token"), "short-token-0123\n", { mode: 0o600 });
    const run = await runHerald(["start"], cliEnv(dir, await freePort()));
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("admin-token must be at least 32 characters long");
  });
});

describe("req.actor fails closed", () => {
  it("a route registered outside the authenticated scope that reads req.actor answers 401, not 500", async () => {
    const store = await createTestStore("embedded");
    const settings = testSettings();
    const ctx = {
      db: store.db,
      settings,
      log: pino({ level: "silent" }),
      hooks: NO_HOOKS,
      secrets: new SecretBox(settings.encryptionKeys ?? []),
    };
    const app = await buildApp({
      ctx,
      adminToken: ADMIN,
      register: async (a) => {
        a.get("/outside", async (req) => ({ kind: req.actor.kind }));
      },
    });
    try {
      const r = await app.inject({ method: "GET", url: "/outside" });
      expect(r.statusCode).toBe(401);
      expectErrorShape(r.body, "unauthorized");
    } finally {
      await app.close();
      await store.dispose();
    }
  });
});
