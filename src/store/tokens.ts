import type { Queryable } from "./db.ts";

export interface TokenRow {
  token_id: string;
  tenant_id: string;
  name: string | null;
  created_at: Date;
}

export async function insertToken(
  q: Queryable,
  t: { token_id: string; tenant_id: string; name: string | null; token_hash: string },
): Promise<TokenRow> {
  const res = await q.query<TokenRow>(
    `INSERT INTO tokens (token_id, tenant_id, name, token_hash) VALUES ($1, $2, $3, $4)
     RETURNING token_id, tenant_id, name, created_at`,
    [t.token_id, t.tenant_id, t.name, t.token_hash],
  );
  return res.rows[0]!;
}

export async function findTokenByHash(q: Queryable, hash: string): Promise<TokenRow | null> {
  const res = await q.query<TokenRow>(
    "SELECT token_id, tenant_id, name, created_at FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    [hash],
  );
  return res.rows[0] ?? null;
}
