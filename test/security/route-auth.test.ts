/**
 * Every route, called by someone who may not use it: no token, a wrong token, a revoked token, another
 * tenant's token, and percent-encoded spellings of its path. The /v1 routes come from /openapi.json,
 * the panel's from the server's route table, so a new route is covered without editing this file
 * (a new /v1 route that takes a body or a tenant needs a line in CROSS_TENANT below, and the test
 * says so).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";
import { type RawResponse, rawRequest } from "./raw-http.ts";

interface Route {
  method: string;
  /** The route's pattern with `:param` segments, e.g. `/v1/subscriptions/:id`. */
  path: string;
}

/** Routes anyone may call, by design (their HEAD too). */
const PUBLIC_API = new Set(["GET /healthz", "GET /readyz"]);
const PUBLIC_PANEL = new Set([
  "GET /webhooks/login",
  "POST /webhooks/login",
  "GET /webhooks/assets/htmx.min.js",
  "GET /webhooks/assets/panel.css",
]);

/** The /v1 routes of /openapi.json (HEAD too for every GET), with `{param}` written `:param`. */
async function apiRoutes(url: string): Promise<Route[]> {
  const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, object> };
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) {
      const r = { method: method.toUpperCase(), path: path.replace(/\{(\w+)\}/g, ":$1") };
      out.push(r);
      if (r.method === "GET") out.push({ ...r, method: "HEAD" });
    }
  }
  return out;
}

/**
 * Every route of the server, read from fastify's route tree (`printRoutes({commonPrefix:false})`):
 * one node a line, four characters of indentation a level, a node's methods in parentheses.
 */
function routeTable(tree: string): Route[] {
  const out: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    if (m[3]) for (const method of m[3].split(", ")) out.push({ method, path: stack.join("") });
  }
  return out;
}

/** Every character of a path but `/` percent-encoded, with upper- or lower-case hex digits. */
function encodeAll(path: string, upper: boolean): string {
  return path
    .split("/")
    .map((seg) =>
      [...Buffer.from(seg, "utf8")]
        .map((b) => {
          const hex = b.toString(16).padStart(2, "0");
          return `%${upper ? hex.toUpperCase() : hex}`;
        })
        .join(""),
    )
    .join("/");
}

/** Spellings of `path` that the router reads as `path` (the authentication must not see a difference). */
function spellings(path: string): string[] {
  const [, first = "", ...rest] = path.split("/");
  const tail = rest.length ? `/${rest.join("/")}` : "";
  const out = [
    `/%${first.charCodeAt(0).toString(16)}${first.slice(1)}${tail}`,
    `/${first.slice(0, -1)}%${first.charCodeAt(first.length - 1).toString(16)}${tail}`,
    encodeAll(path, true),
    encodeAll(path, false),
  ];
  // A lower-case hex digit in a later segment (o = %6f, n = %6e …), when the path has such a letter.
  const i = path.search(/[j-o]/);
  if (i > first.length + 1) {
    out.push(`${path.slice(0, i)}%${path.charCodeAt(i).toString(16)}${path.slice(i + 1)}`);
  }
  return out;
}

interface Fixture {
  /** Tenant A's live token, its revoked one; tenant B's ids. */
  tokenA: string;
  revokedA: string;
  b: { tenant: string; subscription: string; event: number; delivery: number; job: number; token: string };
}

/** The path with its parameters replaced by tenant B's ids. */
function fill(path: string, f: Fixture): string {
  const ids: Record<string, string> = {
    id: path.includes("/retriggers/")
      ? String(f.b.job)
      : path.includes("/tokens/")
        ? f.b.token
        : f.b.subscription,
    event_id: String(f.b.event),
    delivery_id: String(f.b.delivery),
    deliveryId: String(f.b.delivery),
    job: String(f.b.job),
    token: f.b.token,
    action: "pause",
    tenant_id: f.b.tenant,
  };
  return path.replace(/:(\w+)/g, (_, name: string) => {
    const v = ids[name];
    if (v === undefined) throw new Error(`no plausible value for :${name} in ${path}: add one to fill()`);
    return encodeURIComponent(v);
  });
}

/**
 * Tenant A's call on tenant B's things: the body and query each route needs to get past its schema and
 * reach the tenant check. `scoped` routes show only the caller's own rows by construction: they may
 * answer 200, and then must not mention tenant B.
 */
const CROSS_TENANT: Record<string, (f: Fixture) => { query?: string; body?: unknown; scoped?: boolean }> = {
  "POST /v1/events": (f) => ({ body: { tenant_id: f.b.tenant, event_type: "t", payload: {} } }),
  "POST /v1/events/batch": (f) => ({
    body: { events: [{ tenant_id: f.b.tenant, event_type: "t", payload: {} }] },
  }),
  "POST /v1/events/:event_id/repair": () => ({ body: { payload: { x: 1 }, reason: "r" } }),
  "POST /v1/subscriptions": (f) => ({
    body: { tenant_id: f.b.tenant, url: "http://127.0.0.1:9/x", event_types: ["*"] },
  }),
  // Filtering by another tenant lists nothing (the caller's own tenant is always implied).
  "GET /v1/subscriptions": (f) => ({ query: `tenant_id=${f.b.tenant}`, scoped: true }),
  "PATCH /v1/subscriptions/:id": () => ({ body: { status: "paused" } }),
  "PUT /v1/tenants/:tenant_id/limits": () => ({ body: { max_subscriptions: 5 } }),
  "POST /v1/subscriptions/:id/rotate-secret": () => ({ body: {} }),
  "POST /v1/subscriptions/:id/head/drop": () => ({ body: { reason: "r" } }),
  "POST /v1/subscriptions/:id/dlq/replay": () => ({ body: {} }),
  "GET /v1/deliveries": (f) => ({ query: `subscription_id=${f.b.subscription}`, scoped: true }),
  "POST /v1/retriggers": (f) => ({
    body: { tenant_id: f.b.tenant, event_type: "t", event_ids: [f.b.event], dry_run: true },
  }),
  "GET /v1/retriggers": () => ({ scoped: true }),
  "POST /v1/retriggers/:id/resume": () => ({ body: {} }),
  "POST /v1/retriggers/:id/cancel": () => ({ body: {} }),
  "POST /v1/tokens": (f) => ({ body: { tenant_id: f.b.tenant } }),
  "GET /v1/tokens": (f) => ({ query: `tenant_id=${f.b.tenant}` }),
  "GET /v1/audit": (f) => ({ query: `subscription_id=${f.b.subscription}`, scoped: true }),
};

const describeStatus = (r: RawResponse | { status: number }, what: string) =>
  `${what} answered ${r.status}${"body" in r ? `: ${String(r.body).slice(0, 200)}` : ""}`;

describe.each(STORE_KINDS)("route authentication on the %s store", (kind) => {
  let h: TestHerald;
  let f: Fixture;
  let api: Route[];
  let panel: Route[];

  beforeAll(async () => {
    // Hundreds of refused calls from one address: keep the failure limit out of this test's way.
    h = await startTestHerald(kind, { authFailureLimit: 1_000_000 });
    const mint = async (tenant: string) =>
      (await h.api<{ token_id: string; token: string }>("POST", "/v1/tokens", { tenant_id: tenant })).body;
    const a = await mint("tenant-a");
    const revoked = await mint("tenant-a");
    expect((await h.api("DELETE", `/v1/tokens/${revoked.token_id}`)).status).toBe(200);
    const bToken = await mint("tenant-b");
    const sub = await h.api<{ subscription_id: string }>("POST", "/v1/subscriptions", {
      tenant_id: "tenant-b",
      url: "http://127.0.0.1:9/b",
      event_types: ["*"],
    });
    const ev = await h.api<{ event_id: number }>("POST", "/v1/events", {
      tenant_id: "tenant-b",
      event_type: "t",
      payload: { secret_of_b: true },
    });
    const detail = await h.api<{ deliveries: Array<{ delivery_id: number }> }>(
      "GET",
      `/v1/events/${ev.body.event_id}`,
    );
    const job = await h.api<{ job_id: number }>("POST", "/v1/retriggers", {
      tenant_id: "tenant-b",
      event_type: "t",
      event_ids: [ev.body.event_id],
    });
    expect(job.status, JSON.stringify(job.body)).toBe(202);
    f = {
      tokenA: a.token,
      revokedA: revoked.token,
      b: {
        tenant: "tenant-b",
        subscription: sub.body.subscription_id,
        event: ev.body.event_id,
        delivery: detail.body.deliveries[0]!.delivery_id,
        job: job.body.job_id,
        token: bToken.token_id,
      },
    };
    const isPublic = (set: Set<string>, r: Route) => set.has(`${r.method.replace("HEAD", "GET")} ${r.path}`);
    api = (await apiRoutes(h.url)).filter((r) => !isPublic(PUBLIC_API, r));
    const table = routeTable(h.proc.app!.printRoutes({ commonPrefix: false }));
    panel = table.filter((r) => r.path.startsWith("/webhooks") && !isPublic(PUBLIC_PANEL, r));
    // The enumeration itself works: the route table agrees with the OpenAPI document, and both are long.
    const known = new Set(table.map((r) => `${r.method} ${r.path}`));
    for (const r of api)
      expect(known, `${r.method} ${r.path} in the route table`).toContain(`${r.method} ${r.path}`);
    expect(api.length).toBeGreaterThan(30);
    expect(panel.length).toBeGreaterThan(30);
    expect(known).toContain("POST /webhooks/tokens/:token/revoke");
    expect(known).toContain("DELETE /v1/tokens/:id");
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers 401 to every /v1 route called without a token, with a wrong one, or with a revoked one", async () => {
    const failures: string[] = [];
    for (const r of api) {
      const path = fill(r.path, f);
      for (const [who, token] of [
        ["no token", null],
        ["a wrong token", "hrd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
        ["a wrong admin-looking token", `${ADMIN}x`],
        ["a revoked token", f.revokedA],
      ] as const) {
        const res = await fetch(`${h.url}${path}`, {
          method: r.method,
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
        await res.arrayBuffer();
        if (res.status !== 401) failures.push(describeStatus(res, `${r.method} ${path} with ${who}`));
      }
    }
    expect(failures).toEqual([]);
  });

  it("answers 401 to every percent-encoded spelling of every /v1 route", async () => {
    const failures: string[] = [];
    for (const r of api) {
      for (const path of spellings(fill(r.path, f))) {
        for (const headers of [{}, { Authorization: `Bearer ${f.revokedA}` }] as Array<
          Record<string, string>
        >) {
          const res = await rawRequest(h.url, r.method, path, headers);
          if (res.status !== 401) failures.push(describeStatus(res, `${r.method} ${path}`));
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("answers 403 or 404 to another tenant's token on every /v1 route that names tenant B or its ids", async () => {
    const failures: string[] = [];
    for (const r of api) {
      const key = `${r.method} ${r.path}`;
      const plan = CROSS_TENANT[key.replace(/^HEAD /, "GET ")]?.(f);
      const hasParams = r.path.includes(":");
      if (!plan && !hasParams) {
        failures.push(`${key} has no path ids and no cross-tenant plan: add it to CROSS_TENANT`);
        continue;
      }
      const path = `${fill(r.path, f)}${plan?.query ? `?${plan.query}` : ""}`;
      const res = await fetch(`${h.url}${path}`, {
        method: r.method,
        headers: {
          authorization: `Bearer ${f.tokenA}`,
          ...(plan?.body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(plan?.body === undefined ? {} : { body: JSON.stringify(plan.body) }),
      });
      const text = await res.text();
      if (plan?.scoped && res.status === 200) {
        for (const leak of [f.b.tenant, f.b.subscription, "secret_of_b"]) {
          if (text.includes(leak)) failures.push(`${key} as tenant A shows ${leak}: ${text.slice(0, 200)}`);
        }
      } else if (res.status !== 403 && res.status !== 404) {
        failures.push(
          `${r.method} ${path} with tenant A's token answered ${res.status}: ${text.slice(0, 200)}`,
        );
      }
    }
    expect(failures).toEqual([]);
  });

  it("refuses every panel route without a session, whatever bearer token or cookie comes with it, however spelled", async () => {
    const failures: string[] = [];
    const callers: Array<[string, Record<string, string>]> = [
      ["nothing", {}],
      ["the admin token as a bearer", { Authorization: `Bearer ${ADMIN}` }],
      ["a tenant token", { Authorization: `Bearer ${f.tokenA}` }],
      ["a revoked token", { Authorization: `Bearer ${f.revokedA}` }],
      [
        "a forged session",
        { Cookie: "herald_panel=v1.0.AAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
      ],
    ];
    // A page asks the browser to log in; anything else is refused outright.
    const refused = (res: RawResponse, method: string) =>
      method === "GET"
        ? res.status === 303 && (res.headers.location ?? "").startsWith("/webhooks/login")
        : res.status === 401 || res.status === 403;
    for (const r of panel) {
      const path = fill(r.path, f);
      for (const [who, headers] of callers) {
        const res = await rawRequest(h.url, r.method, path, headers);
        if (!refused(res, r.method)) failures.push(describeStatus(res, `${r.method} ${path} with ${who}`));
      }
      for (const spelled of spellings(path)) {
        const res = await rawRequest(h.url, r.method, spelled, { Authorization: `Bearer ${ADMIN}` });
        if (!refused(res, r.method)) failures.push(describeStatus(res, `${r.method} ${spelled}`));
      }
    }
    expect(failures).toEqual([]);
  });
});
