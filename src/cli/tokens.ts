import type { Command } from "commander";
import { call, resolveClient } from "./client.ts";
import { type ClientFlags, clientCommand, fail, output } from "./common.ts";
import { printTable } from "./output.ts";

interface TokenOut {
  token_id: string;
  tenant_id: string;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
}

const row = (t: TokenOut) => ({
  id: t.token_id,
  tenant: t.tenant_id,
  name: t.name,
  created: t.created_at,
  revoked: t.revoked_at,
});

/** `herald tokens create|list|revoke`: admin-only token management through the API. */
export function registerTokenCommands(program: Command): void {
  const tokens = program.command("tokens").description("manage tenant tokens (admin token only)");

  clientCommand(tokens.command("create").description("make a tenant-scoped token (its value is shown once)"))
    .requiredOption("--tenant <tenant>", "the tenant the token is confined to")
    .option("--name <name>", "a label")
    .action(async (o: ClientFlags & { tenant: string; name?: string }) => {
      try {
        const r = await call<TokenOut & { token: string }>(
          resolveClient({ url: o.apiUrl, token: o.token }),
          "POST",
          "/v1/tokens",
          { tenant_id: o.tenant, ...(o.name ? { name: o.name } : {}) },
        );
        output(o, r, () => process.stdout.write(`token ${r.token_id} (shown once): ${r.token}\n`));
      } catch (err) {
        fail(err, o);
      }
    });

  clientCommand(tokens.command("list").description("list tokens, newest first (never their value)"))
    .option("--tenant <tenant>", "only this tenant's tokens")
    .option("--all", "include revoked tokens")
    .option("--limit <n>", "at most this many (1-500)", "100")
    .action(async (o: ClientFlags & { tenant?: string; all?: boolean; limit: string }) => {
      try {
        const q = new URLSearchParams({ limit: o.limit });
        if (o.tenant) q.set("tenant_id", o.tenant);
        if (o.all) q.set("include_revoked", "true");
        const r = await call<{ items: TokenOut[]; next_cursor: string | null }>(
          resolveClient({ url: o.apiUrl, token: o.token }),
          "GET",
          `/v1/tokens?${q}`,
        );
        output(o, r, () => printTable(r.items.map(row)));
      } catch (err) {
        fail(err, o);
      }
    });

  clientCommand(tokens.command("revoke <id>").description("revoke a token: refused at once by every process"))
    .option("--reason <text>", "why (kept in the audit row)")
    .action(async (id: string, o: ClientFlags & { reason?: string }) => {
      try {
        const r = await call<TokenOut>(
          resolveClient({ url: o.apiUrl, token: o.token }),
          "DELETE",
          `/v1/tokens/${encodeURIComponent(id)}${o.reason ? `?${new URLSearchParams({ reason: o.reason })}` : ""}`,
        );
        output(o, r, () => process.stdout.write(`revoked ${r.token_id} (tenant ${r.tenant_id})\n`));
      } catch (err) {
        fail(err, o);
      }
    });
}
