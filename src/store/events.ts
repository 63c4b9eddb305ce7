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

export interface InsertedEvent {
  ord: number;
  event_id: number;
}

/**
 * Inserts events in input order (ids follow the order); a row whose (tenant, idempotency_key) already
 * exists is skipped. Returns the inserted ones with their input index.
 */
export async function insertEvents(q: Queryable, events: readonly NewEvent[]): Promise<InsertedEvent[]> {
  const res = await q.query<InsertedEvent>(
    `WITH input AS (
       SELECT t.tenant_id, t.event_type, t.aggregate_id, t.occurred_at, p.payload, t.idempotency_key,
              t.source_txn_id, t.retrigger_of, t.job_id, t.ord
       FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::text[], $7::text[], $8::bigint[],
                   $9::bigint[])
         WITH ORDINALITY AS t(tenant_id, event_type, aggregate_id, occurred_at, idempotency_key, source_txn_id,
                              retrigger_of, job_id, ord)
       JOIN jsonb_array_elements($5::jsonb) WITH ORDINALITY AS p(payload, ord) ON p.ord = t.ord
     ), numbered AS (
       SELECT nextval(pg_get_serial_sequence('events', 'event_id')) AS event_id, input.*
       FROM input ORDER BY ord
     ), ins AS (
       INSERT INTO events (event_id, tenant_id, event_type, aggregate_id, occurred_at, payload, idempotency_key,
                           source_txn_id, retrigger_of, job_id)
       OVERRIDING SYSTEM VALUE
       SELECT event_id, tenant_id, event_type, aggregate_id, occurred_at, payload, idempotency_key,
              source_txn_id, retrigger_of, job_id
       FROM numbered ORDER BY ord
       ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
       RETURNING event_id
     )
     SELECT ins.event_id, numbered.ord::int - 1 AS ord
     FROM ins JOIN numbered USING (event_id)
     ORDER BY numbered.ord`,
    [
      events.map((e) => e.tenant_id),
      events.map((e) => e.event_type),
      events.map((e) => e.aggregate_id),
      events.map((e) => e.occurred_at.toISOString()),
      // The payloads as one JSON array: one serialisation, no array-literal escaping of every payload.
      JSON.stringify(events.map((e) => e.payload ?? null)),
      events.map((e) => e.idempotency_key),
      events.map((e) => e.source_txn_id),
      events.map((e) => e.retrigger_of ?? null),
      events.map((e) => e.job_id ?? null),
    ],
  );
  return res.rows;
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
