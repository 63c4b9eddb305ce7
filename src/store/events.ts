import type { Queryable } from "./db.ts";
import type { DeliveryRow, EventRow } from "./types.ts";

export interface NewEvent {
  tenant_id: string;
  event_type: string;
  aggregate_id: string | null;
  occurred_at: Date;
  payload: unknown;
  idempotency_key: string | null;
  source_txn_id: string | null;
  retrigger_of?: number | null;
  job_id?: number | null;
}

export async function findByIdempotencyKeys(
  q: Queryable,
  tenantIds: readonly string[],
  keys: readonly string[],
): Promise<Array<{ tenant_id: string; idempotency_key: string; event_id: number }>> {
  const res = await q.query<{ tenant_id: string; idempotency_key: string; event_id: number }>(
    `SELECT e.tenant_id, e.idempotency_key, e.event_id
     FROM unnest($1::text[], $2::text[]) AS k(tenant_id, idempotency_key)
     JOIN events e ON e.tenant_id = k.tenant_id AND e.idempotency_key = k.idempotency_key`,
    [tenantIds, keys],
  );
  return res.rows;
}

export async function findEvent(
  q: Queryable,
  eventId: number,
  tenantId: string | null,
): Promise<EventRow | null> {
  const res = await q.query<EventRow>(
    "SELECT * FROM events WHERE event_id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
    [eventId, tenantId],
  );
  return res.rows[0] ?? null;
}

export async function deliveriesOfEvent(q: Queryable, eventId: number): Promise<DeliveryRow[]> {
  const res = await q.query<DeliveryRow>(
    "SELECT * FROM deliveries WHERE event_id = $1 ORDER BY subscription_id, attempt_number, delivery_id",
    [eventId],
  );
  return res.rows;
}
