import type { Queryable } from "./db.ts";

/** An admin's override of a tenant's limits; absent means the deployment's defaults. */
export interface TenantLimitRow {
  tenant_id: string;
  max_subscriptions: number;
  updated_at: Date;
}

/**
 * The advisory-lock space of "creating a subscription for a tenant" (the two-key form; the claim uses
 * another space, migrations the one-key form).
 */
const TENANT_SUBSCRIPTIONS_LOCK_SPACE = 0x48525453;

/**
 * Serialises subscription creation per tenant until the transaction ends, so a count taken after it
 * sees every subscription committed by an earlier creator. Two tenants whose ids share a hash only
 * wait for each other.
 */
export async function lockTenantSubscriptions(q: Queryable, tenantId: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(${TENANT_SUBSCRIPTIONS_LOCK_SPACE}, hashtext($1))`, [tenantId]);
}

export async function findTenantLimit(q: Queryable, tenantId: string): Promise<TenantLimitRow | null> {
  const res = await q.query<TenantLimitRow>("SELECT * FROM tenant_limits WHERE tenant_id = $1", [tenantId]);
  return res.rows[0] ?? null;
}

export async function upsertTenantLimit(
  q: Queryable,
  tenantId: string,
  maxSubscriptions: number,
): Promise<TenantLimitRow> {
  const res = await q.query<TenantLimitRow>(
    `INSERT INTO tenant_limits (tenant_id, max_subscriptions) VALUES ($1, $2)
     ON CONFLICT (tenant_id) DO UPDATE SET max_subscriptions = EXCLUDED.max_subscriptions, updated_at = now()
     RETURNING *`,
    [tenantId, maxSubscriptions],
  );
  return res.rows[0]!;
}

export async function deleteTenantLimit(q: Queryable, tenantId: string): Promise<void> {
  await q.query("DELETE FROM tenant_limits WHERE tenant_id = $1", [tenantId]);
}
