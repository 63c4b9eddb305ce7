import { auditColumns } from "./audit.ts";
import type { Queryable } from "./db.ts";
import type { NewAudit, PauseReason, SubscriptionStatus } from "./types.ts";

export interface FanOutTarget {
  subscription_id: string;
  tenant_id: string;
  event_types: string[];
  status: SubscriptionStatus;
  pause_reason: PauseReason | null;
  next_position: number;
  pending_count: number;
  pending_ceiling: number;
}

/**
 * Locks, in a fixed order (so concurrent acceptors cannot deadlock), every live subscription of the
 * given tenants that wants any of the given event types (only those in `onlySubscriptionIds` when given:
 * a re-trigger job aimed at some subscriptions). Positions and counters read here are exact until the
 * transaction ends.
 */
export async function lockFanOutTargets(
  q: Queryable,
  tenantIds: readonly string[],
  eventTypes: readonly string[],
  onlySubscriptionIds?: readonly string[],
): Promise<FanOutTarget[]> {
  const res = await q.query<FanOutTarget>(
    `SELECT subscription_id, tenant_id, event_types, status, pause_reason, next_position, pending_count,
            pending_ceiling
     FROM subscriptions
     WHERE tenant_id = ANY($1::text[]) AND deleted_at IS NULL
       AND (event_types && $2::text[] OR '*' = ANY(event_types))
       AND ($3::text[] IS NULL OR subscription_id = ANY($3::text[]))
     ORDER BY subscription_id
     FOR UPDATE`,
    [tenantIds, eventTypes, onlySubscriptionIds ?? null],
  );
  return res.rows;
}

export interface NewDelivery {
  subscription_id: string;
  event_id: number;
  position: number;
  webhook_id: string;
}

export interface CounterUpdate {
  subscription_id: string;
  next_position: number;
  pending_count: number;
  status: SubscriptionStatus;
  pause_reason: PauseReason | null;
}

/**
 * Writes a fan-out in one statement: the attempt-1 pending deliveries (due now), the locked subscriptions'
 * positions, counters and (for an auto-pause) status, and the audit rows of those pauses. One round trip
 * while the subscription rows are locked.
 */
export async function writeFanOut(
  q: Queryable,
  rows: readonly NewDelivery[],
  counters: readonly CounterUpdate[],
  audits: readonly NewAudit[],
): Promise<void> {
  if (rows.length === 0 && counters.length === 0 && audits.length === 0) return;
  await q.query(
    `WITH inserted AS (
       INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
       SELECT s, e, p, w, 1, 'pending', now()
       FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS t(s, e, p, w)
     ), counted AS (
       UPDATE subscriptions s
       SET next_position = u.next_position, pending_count = u.pending_count,
           paused_at = CASE WHEN s.status = 'active' AND u.status = 'paused' THEN now() ELSE s.paused_at END,
           status = u.status, pause_reason = u.pause_reason,
           updated_at = CASE WHEN s.status <> u.status THEN now() ELSE s.updated_at END
       FROM unnest($5::text[], $6::bigint[], $7::int[], $8::text[], $9::text[])
         AS u(subscription_id, next_position, pending_count, status, pause_reason)
       WHERE s.subscription_id = u.subscription_id
     )
     INSERT INTO audit_log (actor, action, tenant_id, subscription_id, job_id, reason, before, after)
     SELECT * FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[],
                          $16::jsonb[], $17::jsonb[])`,
    [
      rows.map((r) => r.subscription_id),
      rows.map((r) => r.event_id),
      rows.map((r) => r.position),
      rows.map((r) => r.webhook_id),
      counters.map((r) => r.subscription_id),
      counters.map((r) => r.next_position),
      counters.map((r) => r.pending_count),
      counters.map((r) => r.status),
      counters.map((r) => r.pause_reason),
      ...auditColumns(audits),
    ],
    { name: "herald_fan_out" },
  );
}
