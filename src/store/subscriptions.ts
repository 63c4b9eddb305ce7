import type { Queryable } from "./db.ts";
import type { Ordering, PauseReason, SubscriptionRow, SubscriptionStatus } from "./types.ts";

export interface NewSubscription {
  subscription_id: string;
  tenant_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  ordering: Ordering;
  pending_ceiling: number;
  dlq_ceiling: number;
  max_in_flight: number;
  secret: string;
}

export async function insertSubscription(q: Queryable, s: NewSubscription): Promise<SubscriptionRow> {
  const res = await q.query<SubscriptionRow>(
    `INSERT INTO subscriptions (subscription_id, tenant_id, url, description, event_types, ordering,
       pending_ceiling, dlq_ceiling, max_in_flight, secret)
     VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8, $9, $10)
     RETURNING *`,
    [
      s.subscription_id,
      s.tenant_id,
      s.url,
      s.description,
      s.event_types,
      s.ordering,
      s.pending_ceiling,
      s.dlq_ceiling,
      s.max_in_flight,
      s.secret,
    ],
  );
  return res.rows[0]!;
}

/** A live (not deleted) subscription; `tenantId` null means any tenant (admin). */
export async function findSubscription(
  q: Queryable,
  id: string,
  tenantId: string | null,
  opts: { forUpdate?: boolean } = {},
): Promise<SubscriptionRow | null> {
  const res = await q.query<SubscriptionRow>(
    `SELECT * FROM subscriptions
     WHERE subscription_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR tenant_id = $2)
     ${opts.forUpdate ? "FOR UPDATE" : ""}`,
    [id, tenantId],
  );
  return res.rows[0] ?? null;
}

export interface SubscriptionFilter {
  tenantId: string | null;
  status?: SubscriptionStatus | undefined;
  after?: string | undefined;
  limit: number;
}

export async function listSubscriptions(q: Queryable, f: SubscriptionFilter): Promise<SubscriptionRow[]> {
  const res = await q.query<SubscriptionRow>(
    `SELECT * FROM subscriptions
     WHERE deleted_at IS NULL
       AND ($1::text IS NULL OR tenant_id = $1)
       AND ($2::text IS NULL OR status = $2)
       AND ($3::text IS NULL OR subscription_id > $3)
     ORDER BY subscription_id
     LIMIT $4`,
    [f.tenantId, f.status ?? null, f.after ?? null, f.limit],
  );
  return res.rows;
}

export interface SubscriptionChanges {
  url?: string;
  description?: string | null;
  event_types?: string[];
  pending_ceiling?: number;
  dlq_ceiling?: number;
  max_in_flight?: number;
  status?: SubscriptionStatus;
  pause_reason?: PauseReason | null;
  secret?: string;
  previous_secret?: string | null;
  previous_secret_expires_at?: Date | null;
}

const UPDATABLE: ReadonlyArray<keyof SubscriptionChanges> = [
  "url",
  "description",
  "event_types",
  "pending_ceiling",
  "dlq_ceiling",
  "max_in_flight",
  "status",
  "pause_reason",
  "secret",
  "previous_secret",
  "previous_secret_expires_at",
];

/** Applies the given columns (a fixed whitelist); sets paused_at when the status changes. */
export async function updateSubscription(
  q: Queryable,
  id: string,
  changes: SubscriptionChanges,
): Promise<SubscriptionRow> {
  const sets: string[] = ["updated_at = now()"];
  const params: unknown[] = [id];
  for (const col of UPDATABLE) {
    if (changes[col] === undefined) continue;
    params.push(changes[col]);
    sets.push(col === "event_types" ? `${col} = $${params.length}::text[]` : `${col} = $${params.length}`);
  }
  if (changes.status !== undefined) {
    sets.push(`paused_at = CASE WHEN $${params.length + 1}::text = 'paused' THEN now() ELSE NULL END`);
    params.push(changes.status);
  }
  const res = await q.query<SubscriptionRow>(
    `UPDATE subscriptions SET ${sets.join(", ")} WHERE subscription_id = $1 RETURNING *`,
    params,
  );
  return res.rows[0]!;
}

/**
 * Deletes a subscription: the row is kept (deliveries and audit refer to it) but hidden, and its
 * queued deliveries are moved to the DLQ with a reason, so nothing is left pending without an owner.
 */
export async function softDeleteSubscription(q: Queryable, id: string): Promise<number> {
  const moved = await q.query(
    `UPDATE deliveries SET status = 'dlq', completed_at = now(), lease_owner = NULL, lease_expires_at = NULL,
       error_kind = COALESCE(error_kind, 'unknown'), error_detail = 'subscription deleted'
     WHERE subscription_id = $1 AND status IN ('pending', 'in_flight')`,
    [id],
  );
  await q.query(
    `UPDATE subscriptions SET deleted_at = now(), updated_at = now(), pending_count = 0,
       dlq_count = dlq_count + $2
     WHERE subscription_id = $1`,
    [id, moved.rowCount],
  );
  return moved.rowCount;
}

/** Exact counts from the rows (for checking the maintained counters, and for the head view). */
export async function countDeliveries(
  q: Queryable,
  id: string,
): Promise<{ pending: number; in_flight: number; dlq: number }> {
  const res = await q.query<{ pending: number; in_flight: number; dlq: number }>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'in_flight')::int AS in_flight,
            count(*) FILTER (WHERE status = 'dlq' AND replayed_at IS NULL)::int AS dlq
     FROM deliveries WHERE subscription_id = $1`,
    [id],
  );
  return res.rows[0]!;
}

/** The tenant's subscriptions that are not deleted (what its subscription limit counts). */
export async function countLiveSubscriptions(q: Queryable, tenantId: string): Promise<number> {
  const res = await q.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM subscriptions WHERE tenant_id = $1 AND deleted_at IS NULL",
    [tenantId],
  );
  return res.rows[0]!.n;
}
