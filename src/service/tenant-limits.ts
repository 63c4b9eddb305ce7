import { MAX_SUBSCRIPTIONS_LIMIT } from "../config.ts";
import { HeraldError } from "../errors.ts";
import { insertAudit } from "../store/audit.ts";
import type { Queryable } from "../store/db.ts";
import { countLiveSubscriptions } from "../store/subscriptions.ts";
import {
  deleteTenantLimit,
  findTenantLimit,
  lockTenantSubscriptions,
  type TenantLimitRow,
  upsertTenantLimit,
} from "../store/tenant-limits.ts";
import { type Actor, actorName, type ServiceContext, tenantScope } from "./context.ts";

const ENV = "HERALD_MAX_SUBSCRIPTIONS_PER_TENANT";

/** A tenant's limits as the API shows them. */
export interface TenantLimitsView {
  tenant_id: string;
  max_subscriptions: number;
  /** `tenant`: set by the admin for this tenant; `default`: the deployment's setting. */
  source: "tenant" | "default";
  /** Its subscriptions now (deleted ones do not count). */
  subscriptions: number;
}

function effective(ctx: ServiceContext, row: TenantLimitRow | null) {
  return row
    ? { max_subscriptions: row.max_subscriptions, source: "tenant" as const }
    : { max_subscriptions: ctx.settings.maxSubscriptionsPerTenant, source: "default" as const };
}

function checkTenantId(tenantId: string): string {
  if (tenantId.trim() === "" || tenantId.includes("\u0000")) {
    throw new HeraldError("invalid_field", "tenant_id must be a non-empty string without NUL characters");
  }
  return tenantId;
}

/**
 * Refuses to add a subscription to a tenant at its limit. Call inside the creating transaction, before
 * the insert: the per-tenant lock it takes is held until commit, so two creators at limit − 1 cannot
 * both count limit − 1 and both insert.
 */
export async function enforceSubscriptionLimit(
  ctx: ServiceContext,
  tx: Queryable,
  tenantId: string,
): Promise<void> {
  await lockTenantSubscriptions(tx, tenantId);
  const limit = effective(ctx, await findTenantLimit(tx, tenantId));
  const count = await countLiveSubscriptions(tx, tenantId);
  if (count < limit.max_subscriptions) return;
  const where =
    limit.source === "tenant" ? "set for this tenant by the admin" : `${ENV}, the default for every tenant`;
  throw new HeraldError(
    "limit_exceeded",
    `tenant "${tenantId}" has ${count} subscriptions; its limit max_subscriptions is ${limit.max_subscriptions} (${where}): delete one, or ask the admin to raise the limit`,
  );
}

/** The limits of a tenant: the admin sees any tenant, a tenant token only its own. */
export async function getTenantLimits(
  ctx: ServiceContext,
  actor: Actor,
  tenantId: string,
): Promise<TenantLimitsView> {
  checkTenantId(tenantId);
  const scope = tenantScope(actor);
  if (scope !== null && scope !== tenantId) {
    throw new HeraldError("forbidden", `tenant_id "${tenantId}" is not the token's tenant`);
  }
  const row = await findTenantLimit(ctx.db, tenantId);
  return {
    tenant_id: tenantId,
    ...effective(ctx, row),
    subscriptions: await countLiveSubscriptions(ctx.db, tenantId),
  };
}

/**
 * Admin only: sets a tenant's subscription limit (0..1,000,000), or with `null` removes the tenant's own
 * limit so the default applies again. Subscriptions over a lowered limit stay; only new ones are refused.
 * Writes an audit row with the before and after.
 */
export async function setTenantLimits(
  ctx: ServiceContext,
  actor: Actor,
  tenantId: string,
  input: { max_subscriptions: number | null; reason?: string | undefined },
): Promise<TenantLimitsView> {
  if (actor.kind !== "admin")
    throw new HeraldError("forbidden", "only the admin token can set tenant limits");
  checkTenantId(tenantId);
  const max = input.max_subscriptions;
  if (max !== null && (!Number.isInteger(max) || max < 0 || max > MAX_SUBSCRIPTIONS_LIMIT)) {
    throw new HeraldError(
      "out_of_range",
      `max_subscriptions must be between 0 and ${MAX_SUBSCRIPTIONS_LIMIT}, or null for the default; got ${max}`,
    );
  }
  return ctx.db.transaction(async (tx) => {
    const before = effective(ctx, await findTenantLimit(tx, tenantId));
    let row: TenantLimitRow | null = null;
    if (max === null) await deleteTenantLimit(tx, tenantId);
    else row = await upsertTenantLimit(tx, tenantId, max);
    const after = effective(ctx, row);
    if (before.max_subscriptions !== after.max_subscriptions || before.source !== after.source) {
      await insertAudit(tx, [
        {
          actor: actorName(actor),
          action: "tenant.limits_updated",
          tenant_id: tenantId,
          reason: input.reason ?? null,
          before,
          after,
        },
      ]);
    }
    return { tenant_id: tenantId, ...after, subscriptions: await countLiveSubscriptions(tx, tenantId) };
  });
}
