import { ceilingPauseAudit, insertAudit } from "./audit.ts";
import type { Queryable } from "./db.ts";
import { pauseAtDlqCeiling } from "./record.ts";
import type { DeliveryRow, EventRow, SubscriptionRow } from "./types.ts";

/** The active head of a queue (lowest position among pending + in_flight) with its event. */
export async function findHead(
  q: Queryable,
  subscriptionId: string,
): Promise<{ delivery: DeliveryRow; event: EventRow } | null> {
  const r = await q.query<DeliveryRow>(
    `SELECT * FROM deliveries WHERE subscription_id = $1 AND status IN ('pending', 'in_flight')
     ORDER BY position LIMIT 1`,
    [subscriptionId],
  );
  const delivery = r.rows[0];
  if (!delivery) return null;
  const e = await q.query<EventRow>("SELECT * FROM events WHERE event_id = $1", [delivery.event_id]);
  return { delivery, event: e.rows[0]! };
}

/** Every attempt of one event to one subscription, oldest first. */
export async function attemptsOf(
  q: Queryable,
  subscriptionId: string,
  eventId: number,
): Promise<DeliveryRow[]> {
  const r = await q.query<DeliveryRow>(
    "SELECT * FROM deliveries WHERE subscription_id = $1 AND event_id = $2 ORDER BY delivery_id",
    [subscriptionId, eventId],
  );
  return r.rows;
}

export interface QueueCounts {
  pending: number;
  in_flight: number;
  dlq: number;
  failed_last_hour: number;
  /** Failed attempts in the last hour of events other than `headEventId`. */
  other_errors_last_hour: number;
}

export async function queueCounts(
  q: Queryable,
  subscriptionId: string,
  headEventId: number | null,
): Promise<QueueCounts> {
  const r = await q.query<QueueCounts>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'in_flight')::int AS in_flight,
            count(*) FILTER (WHERE status = 'dlq' AND replayed_at IS NULL)::int AS dlq,
            count(*) FILTER (WHERE status IN ('failed', 'dlq') AND error_kind IS NOT NULL
                               AND completed_at > now() - interval '1 hour')::int AS failed_last_hour,
            count(*) FILTER (WHERE status IN ('failed', 'dlq') AND error_kind IS NOT NULL
                               AND completed_at > now() - interval '1 hour'
                               AND event_id IS DISTINCT FROM $2::bigint)::int AS other_errors_last_hour
     FROM deliveries WHERE subscription_id = $1`,
    [subscriptionId, headEventId],
  );
  return r.rows[0]!;
}

/** Moves every active row of `eventId` in one queue to the DLQ with `detail`; returns how many moved. */
export async function moveEventToDlq(
  tx: Queryable,
  subscriptionId: string,
  eventId: number,
  detail: string,
): Promise<number> {
  const r = await tx.query(
    `UPDATE deliveries SET status = 'dlq', completed_at = now(), error_detail = $3,
       lease_owner = NULL, lease_expires_at = NULL
     WHERE subscription_id = $1 AND event_id = $2 AND status IN ('pending', 'in_flight')`,
    [subscriptionId, eventId, detail],
  );
  await tx.query(
    `UPDATE subscriptions SET pending_count = pending_count - $2, dlq_count = dlq_count + $2,
       last_delivered_event_id = CASE WHEN ordering = 'ordered'
         THEN GREATEST(COALESCE(last_delivered_event_id, 0), $3) ELSE last_delivered_event_id END,
       updated_at = now()
     WHERE subscription_id = $1`,
    [subscriptionId, r.rowCount, eventId],
  );
  return r.rowCount;
}

export interface ReplaySource {
  delivery_id: number;
  event_id: number;
  webhook_id: string;
}

/**
 * Queues a fresh attempt-1 row for each source (same event and webhook-id) at the tail of the locked
 * subscription's queue, marks the sources replayed, and keeps the counters exact; a replay that brings
 * the queue to its pending ceiling pauses the subscription like any insert. The caller holds the
 * subscription's row lock (`sub` is what it read under it).
 */
export async function queueReplays(
  tx: Queryable,
  sub: SubscriptionRow,
  sources: readonly ReplaySource[],
  actor: string,
): Promise<{ queued: number; paused: boolean; deliveryIds: number[] }> {
  if (sources.length === 0) return { queued: 0, paused: false, deliveryIds: [] };
  const positions = sources.map((_, i) => sub.next_position + i + 1);
  const inserted = await tx.query<{ delivery_id: number }>(
    `INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at, replay_of)
     SELECT $1, e, p, w, 1, 'pending', now(), src
     FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) AS t(e, p, w, src)
     RETURNING delivery_id`,
    [
      sub.subscription_id,
      sources.map((s) => s.event_id),
      positions,
      sources.map((s) => s.webhook_id),
      sources.map((s) => s.delivery_id),
    ],
  );
  const marked = await tx.query(
    `UPDATE deliveries SET replayed_at = now()
     WHERE delivery_id = ANY($1::bigint[]) AND status = 'dlq' AND replayed_at IS NULL`,
    [sources.map((s) => s.delivery_id)],
  );
  const pending = sub.pending_count + sources.length;
  const pause = sub.status === "active" && pending >= sub.pending_ceiling;
  await tx.query(
    `UPDATE subscriptions SET next_position = $2, pending_count = $3, dlq_count = dlq_count - $4,
       status = CASE WHEN $5 THEN 'paused' ELSE status END,
       pause_reason = CASE WHEN $5 THEN 'pending_ceiling' ELSE pause_reason END,
       paused_at = CASE WHEN $5 THEN now() ELSE paused_at END, updated_at = now()
     WHERE subscription_id = $1`,
    [sub.subscription_id, positions.at(-1)!, pending, marked.rowCount, pause],
  );
  if (pause) {
    await insertAudit(tx, [
      ceilingPauseAudit({
        ...sub,
        reason: "pending_ceiling",
        count: pending,
        ceiling: sub.pending_ceiling,
        cause: `after a replay by ${actor}`,
      }),
    ]);
  }
  return { queued: sources.length, paused: pause, deliveryIds: inserted.rows.map((r) => r.delivery_id) };
}

/** Marks DLQ rows replayed without queueing them (other rows of an event that one replay covers). */
export async function markReplayed(
  tx: Queryable,
  subscriptionId: string,
  deliveryIds: readonly number[],
): Promise<void> {
  if (deliveryIds.length === 0) return;
  const r = await tx.query(
    `UPDATE deliveries SET replayed_at = now()
     WHERE delivery_id = ANY($1::bigint[]) AND status = 'dlq' AND replayed_at IS NULL`,
    [deliveryIds],
  );
  await tx.query("UPDATE subscriptions SET dlq_count = dlq_count - $2 WHERE subscription_id = $1", [
    subscriptionId,
    r.rowCount,
  ]);
}

/** Per subscription, the event's latest row when that row is in the DLQ (what "fix and replay" re-sends). */
export async function deadEndsOfEvent(
  tx: Queryable,
  eventId: number,
): Promise<Array<ReplaySource & { subscription_id: string }>> {
  const r = await tx.query<ReplaySource & { subscription_id: string; status: string }>(
    `SELECT DISTINCT ON (d.subscription_id) d.delivery_id, d.subscription_id, d.event_id, d.webhook_id, d.status
     FROM deliveries d JOIN subscriptions s ON s.subscription_id = d.subscription_id
     WHERE d.event_id = $1 AND s.deleted_at IS NULL
     ORDER BY d.subscription_id, d.delivery_id DESC`,
    [eventId],
  );
  return r.rows.filter((row) => row.status === "dlq");
}

export interface DlqFilter {
  since?: Date | undefined;
  until?: Date | undefined;
  error_kind?: string | undefined;
  event_ids?: readonly number[] | undefined;
  limit: number;
}

/** DLQ rows of a queue not yet replayed, matching the filter, in queue order. */
export async function selectDlqForReplay(
  tx: Queryable,
  subscriptionId: string,
  f: DlqFilter,
): Promise<ReplaySource[]> {
  const r = await tx.query<ReplaySource>(
    `SELECT delivery_id, event_id, webhook_id FROM deliveries
     WHERE subscription_id = $1 AND status = 'dlq' AND replayed_at IS NULL
       AND ($2::timestamptz IS NULL OR completed_at >= $2)
       AND ($3::timestamptz IS NULL OR completed_at < $3)
       AND ($4::text IS NULL OR error_kind = $4)
       AND ($5::bigint[] IS NULL OR event_id = ANY($5::bigint[]))
       AND NOT EXISTS (SELECT 1 FROM deliveries a WHERE a.subscription_id = $1 AND a.event_id = deliveries.event_id
                         AND a.status IN ('pending', 'in_flight'))
     ORDER BY position, delivery_id
     LIMIT $6`,
    [subscriptionId, f.since ?? null, f.until ?? null, f.error_kind ?? null, f.event_ids ?? null, f.limit],
  );
  return r.rows;
}

export { pauseAtDlqCeiling };

export interface DeliveryFilter {
  tenantId: string | null;
  subscription_id?: string | undefined;
  event_id?: number | undefined;
  status?: string | undefined;
  error_kind?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  before?: number | undefined;
  limit: number;
}

/** Delivery rows, newest first, paged by delivery_id; a tenant sees only its subscriptions' rows. */
export async function listDeliveries(q: Queryable, f: DeliveryFilter): Promise<DeliveryRow[]> {
  const r = await q.query<DeliveryRow>(
    `SELECT d.* FROM deliveries d JOIN subscriptions s ON s.subscription_id = d.subscription_id
     WHERE ($1::text IS NULL OR s.tenant_id = $1)
       AND ($2::text IS NULL OR d.subscription_id = $2)
       AND ($3::bigint IS NULL OR d.event_id = $3)
       AND ($4::text IS NULL OR d.status = $4)
       AND ($5::text IS NULL OR d.error_kind = $5)
       AND ($6::timestamptz IS NULL OR d.created_at >= $6)
       AND ($7::timestamptz IS NULL OR d.created_at < $7)
       AND ($8::bigint IS NULL OR d.delivery_id < $8)
     ORDER BY d.delivery_id DESC
     LIMIT $9`,
    [
      f.tenantId,
      f.subscription_id ?? null,
      f.event_id ?? null,
      f.status ?? null,
      f.error_kind ?? null,
      f.since ?? null,
      f.until ?? null,
      f.before ?? null,
      f.limit,
    ],
  );
  return r.rows;
}

/** One delivery row with its subscription's tenant, or null (also for another tenant's). */
export async function findDelivery(
  q: Queryable,
  deliveryId: number,
  tenantId: string | null,
): Promise<DeliveryRow | null> {
  const r = await q.query<DeliveryRow>(
    `SELECT d.* FROM deliveries d JOIN subscriptions s ON s.subscription_id = d.subscription_id
     WHERE d.delivery_id = $1 AND ($2::text IS NULL OR s.tenant_id = $2) AND s.deleted_at IS NULL`,
    [deliveryId, tenantId],
  );
  return r.rows[0] ?? null;
}

/** Whether an event has a queued (pending or in-flight) row in a queue. */
export async function hasActiveRow(q: Queryable, subscriptionId: string, eventId: number): Promise<boolean> {
  const r = await q.query(
    "SELECT 1 FROM deliveries WHERE subscription_id = $1 AND event_id = $2 AND status IN ('pending', 'in_flight') LIMIT 1",
    [subscriptionId, eventId],
  );
  return r.rowCount > 0;
}

/** Replaces an event's payload; returns the old one (null when the event is unknown to this tenant). */
export async function replacePayload(
  tx: Queryable,
  eventId: number,
  tenantId: string | null,
  payload: unknown,
): Promise<{ old: unknown; tenant_id: string } | null> {
  const r = await tx.query<{ payload: unknown; tenant_id: string }>(
    "SELECT payload, tenant_id FROM events WHERE event_id = $1 AND ($2::text IS NULL OR tenant_id = $2) FOR UPDATE",
    [eventId, tenantId],
  );
  const row = r.rows[0];
  if (!row) return null;
  await tx.query("UPDATE events SET payload = $2::jsonb WHERE event_id = $1", [
    eventId,
    JSON.stringify(payload),
  ]);
  return { old: row.payload, tenant_id: row.tenant_id };
}

/** Makes a queued (pending) row of this event due now in every queue; returns the subscriptions touched. */
export async function makeDueNow(tx: Queryable, eventId: number): Promise<string[]> {
  const r = await tx.query<{ subscription_id: string }>(
    `UPDATE deliveries SET scheduled_at = now() WHERE event_id = $1 AND status = 'pending' AND scheduled_at > now()
     RETURNING subscription_id`,
    [eventId],
  );
  return [...new Set(r.rows.map((x) => x.subscription_id))];
}
