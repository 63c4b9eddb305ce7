import type { Queryable } from "./db.ts";

/** A token as Herald shows it: never its value or hash. */
export interface TokenRow {
  token_id: string;
  tenant_id: string;
  name: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = "token_id, tenant_id, name, created_at, revoked_at";

export async function insertToken(
  q: Queryable,
  t: { token_id: string; tenant_id: string; name: string | null; token_hash: string },
): Promise<TokenRow> {
  const res = await q.query<TokenRow>(
    `INSERT INTO tokens (token_id, tenant_id, name, token_hash) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [t.token_id, t.tenant_id, t.name, t.token_hash],
  );
  return res.rows[0]!;
}

/** The live token with this hash; a revoked one is not found (read on every request: no cache). */
export async function findTokenByHash(q: Queryable, hash: string): Promise<TokenRow | null> {
  const res = await q.query<TokenRow>(
    `SELECT ${COLUMNS} FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL`,
    [hash],
  );
  return res.rows[0] ?? null;
}

/** One token, locked until the transaction ends (revocation reads it, then changes it). */
export async function lockToken(q: Queryable, tokenId: string): Promise<TokenRow | null> {
  const res = await q.query<TokenRow>(`SELECT ${COLUMNS} FROM tokens WHERE token_id = $1 FOR UPDATE`, [
    tokenId,
  ]);
  return res.rows[0] ?? null;
}

export async function setTokenRevoked(q: Queryable, tokenId: string): Promise<TokenRow> {
  const res = await q.query<TokenRow>(
    `UPDATE tokens SET revoked_at = now() WHERE token_id = $1 RETURNING ${COLUMNS}`,
    [tokenId],
  );
  return res.rows[0]!;
}

export interface TokenFilter {
  tenantId: string | null;
  includeRevoked: boolean;
  /** The last token_id of the previous page. */
  after?: string | undefined;
  limit: number;
}

/** Newest first (created_at, then token_id), paged by the last token_id shown. */
export async function listTokens(q: Queryable, f: TokenFilter): Promise<TokenRow[]> {
  const res = await q.query<TokenRow>(
    `SELECT ${COLUMNS} FROM tokens
     WHERE ($1::text IS NULL OR tenant_id = $1)
       AND ($2::boolean OR revoked_at IS NULL)
       AND ($3::text IS NULL OR (created_at, token_id) < (SELECT created_at, token_id FROM tokens WHERE token_id = $3))
     ORDER BY created_at DESC, token_id DESC
     LIMIT $4`,
    [f.tenantId, f.includeRevoked, f.after ?? null, f.limit],
  );
  return res.rows;
}
