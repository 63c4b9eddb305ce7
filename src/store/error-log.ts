import type { Queryable } from "./db.ts";
import type { DeliveryRow } from "./types.ts";

export interface ErrorLogFilter {
  tenantId: string | null;
  subscriptionId?: string | undefined;
  errorKind?: string | undefined;
  /** `failed`, `dlq`, or both when absent. */
  status?: "failed" | "dlq" | undefined;
  /** Rows older than this delivery_id (the page cursor). */
  before?: number | undefined;
  limit: number;
}

export type ErrorLogRow = DeliveryRow & { event_type: string; tenant_id: string };

/** Failed and DLQ delivery rows, newest first, with their event type and tenant. */
export async function listErrorRows(q: Queryable, f: ErrorLogFilter): Promise<ErrorLogRow[]> {
  const r = await q.query<ErrorLogRow>(
    `SELECT d.*, e.event_type, s.tenant_id
     FROM deliveries d
     JOIN subscriptions s ON s.subscription_id = d.subscription_id
     JOIN events e ON e.event_id = d.event_id
     WHERE d.status IN ('failed', 'dlq')
       AND ($1::text IS NULL OR s.tenant_id = $1)
       AND ($2::text IS NULL OR d.subscription_id = $2)
       AND ($3::text IS NULL OR d.error_kind = $3)
       AND ($4::text IS NULL OR d.status = $4)
       AND ($5::bigint IS NULL OR d.delivery_id < $5)
     ORDER BY d.delivery_id DESC
     LIMIT $6`,
    [f.tenantId, f.subscriptionId ?? null, f.errorKind ?? null, f.status ?? null, f.before ?? null, f.limit],
  );
  return r.rows;
}

export interface LastOutcome {
  subscription_id: string;
  /** The latest failed attempt (with an error kind: operator drops are not errors). */
  error_delivery_id: number | null;
  error_kind: string | null;
  error_detail: string | null;
  error_status: number | null;
  error_at: Date | null;
  /** The latest delivered event among the subscription's last `lookback` delivery rows. */
  delivered_event_id: number | null;
  delivered_at: Date | null;
}

/**
 * Per subscription: its last error, and its last delivered event if one is among its latest
 * `lookback` delivery rows (bounded, so a queue that fails everything costs no more than that).
 */
export async function lastOutcomes(
  q: Queryable,
  ids: readonly string[],
  lookback: number,
): Promise<LastOutcome[]> {
  if (ids.length === 0) return [];
  const r = await q.query<LastOutcome>(
    `SELECT i.id AS subscription_id,
            err.delivery_id AS error_delivery_id, err.error_kind, err.error_detail,
            err.response_status AS error_status, err.completed_at AS error_at,
            ok.event_id AS delivered_event_id, ok.completed_at AS delivered_at
     FROM unnest($1::text[]) AS i(id)
     LEFT JOIN LATERAL (
       SELECT delivery_id, error_kind, error_detail, response_status, completed_at FROM deliveries
       WHERE subscription_id = i.id AND status IN ('failed', 'dlq') AND error_kind IS NOT NULL
       ORDER BY delivery_id DESC LIMIT 1
     ) err ON true
     LEFT JOIN LATERAL (
       SELECT recent.event_id, recent.completed_at FROM (
         SELECT event_id, status, completed_at, delivery_id FROM deliveries
         WHERE subscription_id = i.id
         ORDER BY delivery_id DESC LIMIT $2
       ) recent
       WHERE recent.status = 'delivered'
       ORDER BY recent.delivery_id DESC LIMIT 1
     ) ok ON true`,
    [ids, lookback],
  );
  return r.rows;
}
