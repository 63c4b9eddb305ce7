import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PanelClient, visibleText } from "../panel/client.ts";
import { heraldAt } from "../support/cli.ts";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { STORE_KINDS } from "../support/store.ts";

interface Err {
  error: { code: string; message: string };
}
interface Token {
  token_id: string;
  tenant_id: string;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
  token?: string;
}
interface AuditItem {
  actor: string;
  action: string;
  tenant_id: string | null;
  reason: string | null;
  before: unknown;
  after: unknown;
}

/** Runs `herald <args>` against `h` with `token`. */
const herald = (h: TestHerald, token: string, ...args: string[]) => heraldAt(h.url, token, ...args);

describe.each(STORE_KINDS)("token list and revocation (issue 18, item 9) on the %s store", (kind) => {
  let h: TestHerald;
  /** A second API process on the same store. */
  let other: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald(kind);
    other = await startTestHerald(kind, {}, { api: true, dispatcher: false }, h.store);
  });
  afterAll(async () => {
    await other?.close();
    await h?.close();
  });

  const mint = async (tenant: string, name?: string) => {
    const r = await h.api<Token>("POST", "/v1/tokens", { tenant_id: tenant, ...(name ? { name } : {}) });
    expect(r.status).toBe(201);
    return r.body as Token & { token: string };
  };

  it("lists tokens newest first without their value or hash, filtered by tenant, paged", async () => {
    const a = await mint("list-a", "first");
    const b = await mint("list-a", "second");
    await mint("list-b");
    const r = await h.api<{ items: Token[]; next_cursor: string | null }>(
      "GET",
      "/v1/tokens?tenant_id=list-a",
    );
    expect(r.status).toBe(200);
    expect(r.body.items.map((t) => t.token_id)).toEqual([b.token_id, a.token_id]);
    for (const t of r.body.items) {
      expect(Object.keys(t).sort()).toEqual(["created_at", "name", "revoked_at", "tenant_id", "token_id"]);
    }
    const text = JSON.stringify(r.body);
    expect(text).not.toContain(a.token);
    expect(text).not.toContain(a.token.slice(4));
    const first = await h.api<{ items: Token[]; next_cursor: string | null }>(
      "GET",
      "/v1/tokens?tenant_id=list-a&limit=1",
    );
    expect(first.body.items.map((t) => t.token_id)).toEqual([b.token_id]);
    expect(first.body.next_cursor).toBe(b.token_id);
    const second = await h.api<{ items: Token[]; next_cursor: string | null }>(
      "GET",
      `/v1/tokens?tenant_id=list-a&limit=1&cursor=${first.body.next_cursor}`,
    );
    expect(second.body.items.map((t) => t.token_id)).toEqual([a.token_id]);
    expect(second.body.next_cursor).toBeNull();
  });

  it("revokes a token: this process and another one refuse it at once; audited with who and why", async () => {
    const t = await mint("rev", "to-revoke");
    expect((await h.api("GET", "/v1/subscriptions", undefined, t.token)).status).toBe(200);
    expect((await other.api("GET", "/v1/subscriptions", undefined, t.token)).status).toBe(200);

    const r = await h.api<Token>("DELETE", `/v1/tokens/${t.token_id}?reason=left%20the%20company`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token_id: t.token_id, tenant_id: "rev", name: "to-revoke" });
    expect(r.body.revoked_at).not.toBeNull();

    for (const on of [h, other]) {
      const refused = await on.api<Err>("GET", "/v1/subscriptions", undefined, t.token);
      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe("unauthorized");
    }
    const again = await h.api<Err>("DELETE", `/v1/tokens/${t.token_id}`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("conflict");
    expect((await h.api<Err>("DELETE", "/v1/tokens/tok_unknown")).status).toBe(404);

    const listed = await h.api<{ items: Token[] }>("GET", "/v1/tokens?tenant_id=rev");
    expect(listed.body.items).toEqual([]);
    const all = await h.api<{ items: Token[] }>("GET", "/v1/tokens?tenant_id=rev&include_revoked=true");
    expect(all.body.items.map((x) => [x.token_id, x.revoked_at !== null])).toEqual([[t.token_id, true]]);

    const audit = await h.api<{ items: AuditItem[] }>("GET", "/v1/audit?limit=500");
    const rows = audit.body.items.filter((a) => a.tenant_id === "rev");
    expect(rows.map((a) => a.action)).toEqual(["token.revoked", "token.created"]);
    expect(rows[0]).toMatchObject({ actor: "admin", reason: "left the company" });
    expect(rows[0]!.after).toMatchObject({ token_id: t.token_id, revoked_at: r.body.revoked_at });
    expect(JSON.stringify(audit.body)).not.toContain(t.token);
  });

  it("lets only the admin token list and revoke", async () => {
    const t = await mint("tenant-x");
    const list = await h.api<Err>("GET", "/v1/tokens", undefined, t.token);
    expect(list.status).toBe(403);
    const revoke = await h.api<Err>("DELETE", `/v1/tokens/${t.token_id}`, undefined, t.token);
    expect(revoke.status).toBe(403);
    expect((await h.api("GET", "/v1/subscriptions", undefined, t.token)).status).toBe(200);
  });
});

describe("token verbs of the CLI (issue 18, item 9)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald("embedded");
  });
  afterAll(async () => {
    await h?.close();
  });

  let created: Token & { token: string };

  it("creates and lists with --json and as a table, never showing the value in a list", async () => {
    const c = await herald(h, ADMIN, "tokens", "create", "--tenant", "cli-t", "--name", "ci", "--json");
    expect(c.code, c.err).toBe(0);
    created = JSON.parse(c.out) as Token & { token: string };
    expect(created).toMatchObject({ tenant_id: "cli-t", name: "ci" });

    const l = await herald(h, ADMIN, "tokens", "list", "--tenant", "cli-t", "--json");
    expect(l.code, l.err).toBe(0);
    const listed = JSON.parse(l.out) as { items: Token[] };
    expect(listed.items.map((t) => t.token_id)).toEqual([created.token_id]);
    expect(l.out).not.toContain(created.token);

    const human = await herald(h, ADMIN, "tokens", "list");
    expect(human.out).toContain(created.token_id);
    expect(human.out).toContain("cli-t");
  });

  it("revokes with --json; the revoked token is refused at once", async () => {
    const r = await herald(h, ADMIN, "tokens", "revoke", created.token_id, "--reason", "rotated", "--json");
    expect(r.code, r.err).toBe(0);
    expect((JSON.parse(r.out) as Token).revoked_at).not.toBeNull();
    expect((await h.api("GET", "/v1/subscriptions", undefined, created.token)).status).toBe(401);
    const all = await herald(h, ADMIN, "tokens", "list", "--tenant", "cli-t", "--all", "--json");
    expect((JSON.parse(all.out) as { items: Token[] }).items).toHaveLength(1);
  });

  it("answers errors as JSON with --json: a second revocation, a revoked token", async () => {
    const again = await herald(h, ADMIN, "tokens", "revoke", created.token_id, "--json");
    expect(again.code).toBe(1);
    expect(JSON.parse(again.err)).toMatchObject({ error: { code: "conflict" } });
    const denied = await herald(h, created.token, "tokens", "list", "--json");
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.err)).toMatchObject({ error: { code: "unauthorized" } });
  });
});

describe("token pages of the panel (issue 18, item 9)", () => {
  let h: TestHerald;
  beforeAll(async () => {
    h = await startTestHerald("embedded");
  });
  afterAll(async () => {
    await h?.close();
  });

  it("creates a token (value shown once), lists it, revokes it with a reason; audited as admin", async () => {
    const c = new PanelClient(h.url);
    await c.login();
    const made = await c.submit(
      "/webhooks/tokens",
      { tenant_id: "panel-t", name: "from the panel" },
      "/webhooks/tokens",
    );
    expect(made.status).toBe(201);
    const value = /hrd_[A-Za-z0-9_-]+/.exec(made.text)?.[0];
    expect(value).toBeDefined();
    expect((await h.api("GET", "/v1/subscriptions", undefined, value)).status).toBe(200);

    const list = await c.get("/webhooks/tokens?tenant=panel-t");
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(value!);
    const id = /id="token-(tok_[a-z0-9]+)"/.exec(list.text)?.[1];
    expect(id).toBeDefined();
    expect(visibleText(list.text)).toContain("from the panel");

    const revoked = await c.submit(
      `/webhooks/tokens/${id}/revoke`,
      { reason: "lost laptop" },
      "/webhooks/tokens",
    );
    expect(revoked.status).toBe(303);
    expect((await h.api("GET", "/v1/subscriptions", undefined, value)).status).toBe(401);
    const after = await c.get("/webhooks/tokens?tenant=panel-t&all=1");
    expect(visibleText(after.text)).toContain("revoked");

    const twice = await c.submit(`/webhooks/tokens/${id}/revoke`, { reason: "again" }, "/webhooks/tokens");
    expect(twice.status).toBe(409);
    expect(visibleText(twice.text)).toContain("already revoked");

    const audit = await h.api<{ items: AuditItem[] }>("GET", "/v1/audit?limit=500");
    const rows = audit.body.items.filter((a) => a.tenant_id === "panel-t");
    expect(rows.map((a) => [a.action, a.actor, a.reason])).toEqual([
      ["token.revoked", "admin", "lost laptop"],
      ["token.created", "admin", null],
    ]);
  });

  it("refuses a token form without its CSRF token and a token page without a session", async () => {
    const c = new PanelClient(h.url);
    expect((await c.get("/webhooks/tokens")).status).toBe(303);
    await c.login();
    const forged = await c.post("/webhooks/tokens", { tenant_id: "forged" });
    expect(forged.status).toBe(403);
    const list = await h.api<{ items: Token[] }>("GET", "/v1/tokens?tenant_id=forged");
    expect(list.body.items).toEqual([]);
  });
});
