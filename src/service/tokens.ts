import { timingSafeEqual } from "node:crypto";
import { HeraldError } from "../errors.ts";
import { hashToken, newId, newTokenValue } from "../ids.ts";
import { insertAudit } from "../store/audit.ts";
import {
  findTokenByHash,
  insertToken,
  listTokens as listTokenRows,
  lockToken,
  setTokenRevoked,
  type TokenRow,
} from "../store/tokens.ts";
import { type Actor, actorName, type ServiceContext } from "./context.ts";
import { toPage } from "./page.ts";

/** A token as the API, the CLI and the panel show it: never its value or its hash. */
export interface TokenView {
  token_id: string;
  tenant_id: string;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
}

export function viewToken(t: TokenRow): TokenView {
  return {
    token_id: t.token_id,
    tenant_id: t.tenant_id,
    name: t.name,
    created_at: t.created_at.toISOString(),
    revoked_at: t.revoked_at ? t.revoked_at.toISOString() : null,
  };
}

function adminOnly(actor: Actor, what: string): void {
  if (actor.kind === "tenant") throw new HeraldError("forbidden", `only the admin token can ${what}`);
}

/** Makes a tenant-scoped token; only its hash is stored, the value is shown once. */
export async function createTenantToken(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant_id: string; name?: string | undefined },
): Promise<{ token_id: string; tenant_id: string; name: string | null; token: string; created_at: string }> {
  adminOnly(actor, "create tokens");
  if (input.tenant_id.trim() === "") throw new HeraldError("invalid_field", "tenant_id must not be empty");
  const token = newTokenValue();
  const row = await ctx.db.transaction(async (tx) => {
    const r = await insertToken(tx, {
      token_id: newId("tok"),
      tenant_id: input.tenant_id,
      name: input.name ?? null,
      token_hash: hashToken(token),
    });
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "token.created",
        tenant_id: r.tenant_id,
        after: { token_id: r.token_id, name: r.name },
      },
    ]);
    return r;
  });
  return {
    token_id: row.token_id,
    tenant_id: row.tenant_id,
    name: row.name,
    token,
    created_at: row.created_at.toISOString(),
  };
}

/** Tokens, newest first; revoked ones only when asked. Admin only. */
export async function listTokens(
  ctx: ServiceContext,
  actor: Actor,
  f: {
    tenant_id?: string | undefined;
    include_revoked?: boolean | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<{ items: TokenView[]; next_cursor: string | null }> {
  adminOnly(actor, "list tokens");
  const rows = await listTokenRows(ctx.db, {
    tenantId: f.tenant_id ?? null,
    includeRevoked: f.include_revoked ?? false,
    after: f.after,
    limit: f.limit + 1,
  });
  const page = toPage(rows, f.limit, (t) => t.token_id);
  return { items: page.items.map(viewToken), next_cursor: page.next_cursor };
}

/**
 * Revokes a token, audited. Authentication reads the token's row on every request, so every process
 * refuses it from the commit on. Revoking a revoked token is a 409 (its first revocation stands).
 */
export async function revokeToken(
  ctx: ServiceContext,
  actor: Actor,
  tokenId: string,
  reason?: string | undefined,
): Promise<TokenView> {
  adminOnly(actor, "revoke tokens");
  return ctx.db.transaction(async (tx) => {
    const current = await lockToken(tx, tokenId);
    if (!current) throw new HeraldError("not_found", `token ${tokenId} not found`);
    if (current.revoked_at) {
      throw new HeraldError(
        "conflict",
        `token ${tokenId} was already revoked at ${current.revoked_at.toISOString()}`,
      );
    }
    const revoked = await setTokenRevoked(tx, tokenId);
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "token.revoked",
        tenant_id: revoked.tenant_id,
        reason: reason ?? null,
        before: { token_id: tokenId, name: current.name, revoked_at: null },
        after: { token_id: tokenId, name: revoked.name, revoked_at: viewToken(revoked).revoked_at },
      },
    ]);
    return viewToken(revoked);
  });
}

/** Resolves a bearer token to an actor, or null. The admin token is compared in constant time. */
export async function authenticate(
  ctx: ServiceContext,
  adminToken: string,
  presented: string,
): Promise<Actor | null> {
  const a = Buffer.from(hashToken(presented));
  const b = Buffer.from(hashToken(adminToken));
  if (timingSafeEqual(a, b)) return { kind: "admin" };
  if (!presented.startsWith("hrd_")) return null;
  const row = await findTokenByHash(ctx.db, hashToken(presented));
  return row ? { kind: "tenant", tenantId: row.tenant_id, tokenId: row.token_id } : null;
}
