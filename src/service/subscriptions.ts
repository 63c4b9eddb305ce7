import { CEILING_MIN, validateCeiling } from "../domain/ceilings.ts";
import { HeraldError, notFound } from "../errors.ts";
import { generateSecret } from "../http/signing.ts";
import { validateTargetUrl } from "../http/ssrf.ts";
import { newId } from "../ids.ts";
import { insertAudit } from "../store/audit.ts";
import type { Queryable } from "../store/db.ts";
import {
  findSubscription,
  insertSubscription,
  listSubscriptions,
  type SubscriptionChanges,
  softDeleteSubscription,
  updateSubscription,
} from "../store/subscriptions.ts";
import type { Ordering, PauseReason, SubscriptionRow, SubscriptionStatus } from "../store/types.ts";
import {
  type Actor,
  actorName,
  type ServiceContext,
  type SubscriptionChange,
  tenantScope,
} from "./context.ts";
import { diff } from "./diff.ts";
import { toPage } from "./page.ts";
import { enforceSubscriptionLimit } from "./tenant-limits.ts";

/** What the API shows of a subscription: never its secrets. */
export interface SubscriptionView {
  subscription_id: string;
  tenant_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  ordering: Ordering;
  status: SubscriptionStatus;
  pause_reason: PauseReason | null;
  paused_at: string | null;
  pending_ceiling: number;
  dlq_ceiling: number;
  max_in_flight: number;
  pending_count: number;
  dlq_count: number;
  last_delivered_event_id: number | null;
  secret_rotation_ends_at: string | null;
  created_at: string;
  updated_at: string;
}

export function viewSubscription(s: SubscriptionRow): SubscriptionView {
  return {
    subscription_id: s.subscription_id,
    tenant_id: s.tenant_id,
    url: s.url,
    description: s.description,
    event_types: s.event_types,
    ordering: s.ordering,
    status: s.status,
    pause_reason: s.pause_reason,
    paused_at: s.paused_at ? s.paused_at.toISOString() : null,
    pending_ceiling: s.pending_ceiling,
    dlq_ceiling: s.dlq_ceiling,
    max_in_flight: s.max_in_flight,
    pending_count: s.pending_count,
    dlq_count: s.dlq_count,
    last_delivered_event_id: s.last_delivered_event_id,
    secret_rotation_ends_at:
      s.previous_secret && s.previous_secret_expires_at && s.previous_secret_expires_at > new Date()
        ? s.previous_secret_expires_at.toISOString()
        : null,
    created_at: s.created_at.toISOString(),
    updated_at: s.updated_at.toISOString(),
  };
}

const AUDITED: ReadonlyArray<keyof SubscriptionView> = [
  "url",
  "description",
  "event_types",
  "ordering",
  "status",
  "pause_reason",
  "pending_ceiling",
  "dlq_ceiling",
  "max_in_flight",
];

export const MAX_IN_FLIGHT_BOUNDS = { min: 1, max: 1000 } as const;

export interface CreateSubscriptionInput {
  tenant_id?: string | undefined;
  url: string;
  description?: string | null | undefined;
  event_types: string[];
  ordering?: Ordering | undefined;
  pending_ceiling?: number | undefined;
  dlq_ceiling?: number | undefined;
  max_in_flight?: number | undefined;
}

export interface UpdateSubscriptionInput {
  url?: string | undefined;
  description?: string | null | undefined;
  event_types?: string[] | undefined;
  pending_ceiling?: number | undefined;
  dlq_ceiling?: number | undefined;
  max_in_flight?: number | undefined;
  status?: SubscriptionStatus | undefined;
  reason?: string | undefined;
}

function checkUrl(ctx: ServiceContext, url: string): string {
  const r = validateTargetUrl(url, { allowPrivate: ctx.settings.allowPrivateTargets });
  if (!r.ok) throw new HeraldError("invalid_url", r.message);
  return r.url.toString();
}

function checkCeiling(ctx: ServiceContext, field: "pending_ceiling" | "dlq_ceiling", value: number): number {
  const r = validateCeiling(field, value, ctx.settings.maxPendingHardCap);
  if (!r.ok) throw new HeraldError("out_of_range", r.message);
  return r.value;
}

function checkMaxInFlight(value: number): number {
  const { min, max } = MAX_IN_FLIGHT_BOUNDS;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new HeraldError("out_of_range", `max_in_flight must be between ${min} and ${max}; got ${value}`);
  }
  return value;
}

function checkEventTypes(types: string[]): string[] {
  const out = [...new Set(types.map((t) => t.trim()))];
  if (out.length === 0 || out.some((t) => t.length === 0)) {
    throw new HeraldError(
      "invalid_field",
      'event_types must list at least one non-empty event type (or "*")',
    );
  }
  return out;
}

function resolveTenant(actor: Actor, requested: string | undefined): string {
  const scope = tenantScope(actor);
  if (scope !== null) {
    if (requested !== undefined && requested !== scope) {
      throw new HeraldError("forbidden", `tenant_id "${requested}" is not the token's tenant`);
    }
    return scope;
  }
  if (!requested) throw new HeraldError("invalid_field", "tenant_id is required with the admin token");
  return requested;
}

export async function createSubscription(
  ctx: ServiceContext,
  actor: Actor,
  input: CreateSubscriptionInput,
): Promise<{ subscription: SubscriptionView; secret: string }> {
  const tenantId = resolveTenant(actor, input.tenant_id);
  const row = {
    subscription_id: newId("sub"),
    tenant_id: tenantId,
    url: checkUrl(ctx, input.url),
    description: input.description ?? null,
    event_types: checkEventTypes(input.event_types),
    ordering: input.ordering ?? "unordered",
    pending_ceiling: checkCeiling(
      ctx,
      "pending_ceiling",
      input.pending_ceiling ?? ctx.settings.defaultPendingCeiling,
    ),
    dlq_ceiling: checkCeiling(ctx, "dlq_ceiling", input.dlq_ceiling ?? ctx.settings.defaultDlqCeiling),
    max_in_flight: checkMaxInFlight(input.max_in_flight ?? 10),
  };
  const secret = generateSecret();
  const created = await ctx.db.transaction(async (tx) => {
    await enforceSubscriptionLimit(ctx, tx, tenantId);
    const s = await insertSubscription(tx, { ...row, secret: ctx.secrets.seal(secret) });
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "subscription.created",
        tenant_id: s.tenant_id,
        subscription_id: s.subscription_id,
        after: pick(viewSubscription(s), AUDITED),
      },
    ]);
    return s;
  });
  return { subscription: viewSubscription(created), secret };
}

function pick<T extends object>(o: T, fields: ReadonlyArray<keyof T>): Partial<T> {
  const out: Partial<T> = {};
  for (const f of fields) out[f] = o[f];
  return out;
}

export async function getSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
): Promise<SubscriptionView> {
  const s = await findSubscription(ctx.db, id, tenantScope(actor));
  if (!s) throw notFound("subscription", id);
  return viewSubscription(s);
}

/** Loads and locks a subscription the actor may see, or answers 404. */
export async function lockVisibleSubscription(
  tx: Queryable,
  actor: Actor,
  id: string,
): Promise<SubscriptionRow> {
  const s = await findSubscription(tx, id, tenantScope(actor), { forUpdate: true });
  if (!s) throw notFound("subscription", id);
  return s;
}

export async function listSubscriptionViews(
  ctx: ServiceContext,
  actor: Actor,
  opts: {
    status?: SubscriptionStatus | undefined;
    tenant_id?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<{ items: SubscriptionView[]; next_cursor: string | null }> {
  const scope = tenantScope(actor);
  const tenantId = scope ?? opts.tenant_id ?? null;
  if (scope !== null && opts.tenant_id !== undefined && opts.tenant_id !== scope) {
    return { items: [], next_cursor: null };
  }
  const rows = await listSubscriptions(ctx.db, {
    tenantId,
    status: opts.status,
    after: opts.after,
    limit: opts.limit + 1,
  });
  const page = toPage(rows, opts.limit, (r) => r.subscription_id);
  return { items: page.items.map(viewSubscription), next_cursor: page.next_cursor };
}

/**
 * Changes a subscription. `status: "paused"` pauses it (reason `manual`); `status: "active"` resumes it,
 * whatever paused it. Every change writes an audit row with the before/after diff.
 */
export async function updateSubscriptionFields(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  input: UpdateSubscriptionInput,
): Promise<SubscriptionView> {
  const changes: SubscriptionChanges = {};
  if (input.url !== undefined) changes.url = checkUrl(ctx, input.url);
  if (input.description !== undefined) changes.description = input.description;
  if (input.event_types !== undefined) changes.event_types = checkEventTypes(input.event_types);
  if (input.pending_ceiling !== undefined)
    changes.pending_ceiling = checkCeiling(ctx, "pending_ceiling", input.pending_ceiling);
  if (input.dlq_ceiling !== undefined)
    changes.dlq_ceiling = checkCeiling(ctx, "dlq_ceiling", input.dlq_ceiling);
  if (input.max_in_flight !== undefined) changes.max_in_flight = checkMaxInFlight(input.max_in_flight);

  const { before, after } = await ctx.db.transaction(async (tx) => {
    const current = await lockVisibleSubscription(tx, actor, id);
    if (input.status === "paused" && current.status !== "paused") {
      changes.status = "paused";
      changes.pause_reason = "manual";
    } else if (input.status === "active" && current.status !== "active") {
      changes.status = "active";
      changes.pause_reason = null;
    }
    const updated = Object.keys(changes).length > 0 ? await updateSubscription(tx, id, changes) : current;
    const d = diff(viewSubscription(current), viewSubscription(updated), AUDITED);
    if (d) {
      const action =
        changes.status === "paused"
          ? "subscription.paused"
          : changes.status === "active"
            ? "subscription.resumed"
            : "subscription.updated";
      await insertAudit(tx, [
        {
          actor: actorName(actor),
          action,
          tenant_id: current.tenant_id,
          subscription_id: id,
          reason: input.reason ?? null,
          before: d.before,
          after: d.after,
        },
      ]);
    }
    return { before: current, after: updated };
  });
  let change: SubscriptionChange = "updated";
  if (before.status !== after.status) change = after.status === "paused" ? "paused" : "resumed";
  ctx.hooks.subscriptionChanged(id, change);
  return viewSubscription(after);
}

export async function deleteSubscription(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  reason?: string,
): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const current = await lockVisibleSubscription(tx, actor, id);
    const moved = await softDeleteSubscription(tx, id);
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "subscription.deleted",
        tenant_id: current.tenant_id,
        subscription_id: id,
        reason: reason ?? null,
        before: pick(viewSubscription(current), AUDITED),
        after: { deleted: true, queued_deliveries_moved_to_dlq: moved },
      },
    ]);
  });
  ctx.hooks.subscriptionChanged(id, "deleted");
}

export const DEFAULT_ROTATION_OVERLAP_SECONDS = 24 * 3600;

/** A new signing secret; the old one keeps signing alongside it until the overlap ends. */
export async function rotateSecret(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  overlapSeconds = DEFAULT_ROTATION_OVERLAP_SECONDS,
): Promise<{ secret: string; previous_secret_expires_at: string }> {
  if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > 30 * 24 * 3600) {
    throw new HeraldError(
      "out_of_range",
      `overlap_seconds must be between 0 and 2592000; got ${overlapSeconds}`,
    );
  }
  const secret = generateSecret();
  const expires = new Date(Date.now() + overlapSeconds * 1000);
  await ctx.db.transaction(async (tx) => {
    const current = await lockVisibleSubscription(tx, actor, id);
    await updateSubscription(tx, id, {
      secret: ctx.secrets.seal(secret),
      // Stored sealed already; sealed again only if under an older key or from before encryption.
      previous_secret: ctx.secrets.reseal(current.secret),
      previous_secret_expires_at: expires,
    });
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "subscription.secret_rotated",
        tenant_id: current.tenant_id,
        subscription_id: id,
        after: { previous_secret_expires_at: expires.toISOString() },
      },
    ]);
  });
  ctx.hooks.subscriptionChanged(id, "updated");
  return { secret, previous_secret_expires_at: expires.toISOString() };
}

export { CEILING_MIN };
