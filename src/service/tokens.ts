import { timingSafeEqual } from "node:crypto";
import { HeraldError } from "../errors.ts";
import { hashToken, newId, newTokenValue } from "../ids.ts";
import { insertAudit } from "../store/audit.ts";
import { findTokenByHash, insertToken } from "../store/tokens.ts";
import { type Actor, actorName, type ServiceContext } from "./context.ts";

/** Makes a tenant-scoped token; only its hash is stored, the value is shown once. */
export async function createTenantToken(
  ctx: ServiceContext,
  actor: Actor,
  input: { tenant_id: string; name?: string | undefined },
): Promise<{ token_id: string; tenant_id: string; name: string | null; token: string; created_at: string }> {
  if (actor.kind !== "admin") throw new HeraldError("forbidden", "only the admin token can create tokens");
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
