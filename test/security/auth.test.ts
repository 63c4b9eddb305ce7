import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";
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
