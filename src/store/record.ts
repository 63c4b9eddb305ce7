import { ceilingPauseAudit, insertAudit } from "./audit.ts";
import type { Db, Queryable } from "./db.ts";

/** The outcome of one attempt, decided by the dispatcher (domain rules), written here. */
export interface AttemptResult {
  delivery_id: number;
  /** delivered; failed (a retry row is queued after retry_delay_ms); dlq (no attempts left). */
  status: "delivered" | "failed" | "dlq";
  response_status: number | null;
  response_body: string | null;
  error_kind: string | null;
  error_detail: string | null;
  latency_ms: number | null;
  retry_delay_ms: number | null;
}

interface Recorded {
  delivery_id: number;
  subscription_id: string;
  event_id: number;
  position: number;
  webhook_id: string;
  attempt_number: number;
  status: "delivered" | "failed" | "dlq";
  retry_delay_ms: number | null;
}

export interface RecordSummary {
  recorded: number;
  /** Results for rows no longer in flight under this owner (lease expired and taken back): ignored. */
  stale: number;
  /** Subscriptions paused by reaching their DLQ ceiling in this transaction. */
  paused: string[];
  /** Subscriptions whose queue changed (their next head may now be due). */
  subscriptions: string[];
}

/**
 * Writes a batch of attempt results in one transaction: each row's final state, a retry row for each
 * failure (same event, position and webhook-id; attempt + 1; due after the back-off), and the
 * subscriptions' counters and cursors. A subscription whose DLQ count reaches its ceiling is paused,
 * with an audit row. Only rows still in flight under `owner` are written.
 */
export async function recordResults(
  db: Db,
  owner: string,
  results: readonly AttemptResult[],
): Promise<RecordSummary> {
  if (results.length === 0) return { recorded: 0, stale: 0, paused: [], subscriptions: [] };
  return db.transaction(async (tx) => {
    const done = await tx.query<Recorded>(
      `UPDATE deliveries d
       SET status = r.status, completed_at = now(), response_status = r.response_status,
           response_body = r.response_body, error_kind = r.error_kind, error_detail = r.error_detail,
           latency_ms = r.latency_ms, lease_owner = NULL, lease_expires_at = NULL
       FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::int[], $8::int[])
         AS r(delivery_id, status, response_status, response_body, error_kind, error_detail, latency_ms, retry_delay_ms)
       WHERE d.delivery_id = r.delivery_id AND d.status = 'in_flight' AND d.lease_owner = $9
       RETURNING d.delivery_id, d.subscription_id, d.event_id, d.position, d.webhook_id, d.attempt_number, d.status,
                 r.retry_delay_ms`,
      [
        results.map((r) => r.delivery_id),
        results.map((r) => r.status),
        results.map((r) => r.response_status),
        results.map((r) => r.response_body),
        results.map((r) => r.error_kind),
        results.map((r) => r.error_detail),
        results.map((r) => r.latency_ms),
        results.map((r) => r.retry_delay_ms),
        owner,
      ],
    );
    const rows = done.rows;
    await queueRetries(
      tx,
      rows.filter((r) => r.status === "failed"),
    );
    const { subscriptions, paused } = await applyCounters(tx, rows);
    return { recorded: rows.length, stale: results.length - rows.length, paused, subscriptions };
  });
}

/** Inserts the attempt + 1 row for each failed attempt. */
export async function queueRetries(
  tx: Queryable,
  failed: ReadonlyArray<
    Pick<
      Recorded,
      "subscription_id" | "event_id" | "position" | "webhook_id" | "attempt_number" | "retry_delay_ms"
    >
  >,
): Promise<void> {
  if (failed.length === 0) return;
  await tx.query(
    `INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
     SELECT s, e, p, w, a + 1, 'pending', now() + (delay::double precision * interval '1 millisecond')
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::int[], $6::int[]) AS t(s, e, p, w, a, delay)`,
    [
      failed.map((r) => r.subscription_id),
      failed.map((r) => r.event_id),
      failed.map((r) => r.position),
      failed.map((r) => r.webhook_id),
      failed.map((r) => r.attempt_number),
      failed.map((r) => r.retry_delay_ms ?? 0),
    ],
  );
}

/**
 * Counters and cursors for rows that left the queue (delivered or dlq): pending_count down, dlq_count up,
 * ordered cursors advanced. Locks the subscriptions in id order (the same order as fan-out).
 */
async function applyCounters(
  tx: Queryable,
  rows: readonly Recorded[],
): Promise<{ subscriptions: string[]; paused: string[] }> {
  const per = new Map<string, { left: number; dlq: number; maxEvent: number }>();
  for (const r of rows) {
    const p = per.get(r.subscription_id) ?? { left: 0, dlq: 0, maxEvent: 0 };
    if (r.status !== "failed") {
      p.left += 1;
      p.maxEvent = Math.max(p.maxEvent, r.event_id);
    }
    if (r.status === "dlq") p.dlq += 1;
    per.set(r.subscription_id, p);
  }
  const ids = [...per.keys()].sort();
  const changed = ids.filter((id) => per.get(id)!.left > 0);
  if (changed.length === 0) return { subscriptions: ids, paused: [] };
  await tx.query(
    "SELECT 1 FROM subscriptions WHERE subscription_id = ANY($1::text[]) ORDER BY subscription_id FOR UPDATE",
    [changed],
  );
  await tx.query(
    `UPDATE subscriptions s
     SET pending_count = s.pending_count - u.left_queue,
         dlq_count = s.dlq_count + u.dlq,
         last_delivered_event_id = CASE WHEN s.ordering = 'ordered' AND u.max_event > 0
           THEN GREATEST(COALESCE(s.last_delivered_event_id, 0), u.max_event) ELSE s.last_delivered_event_id END
     FROM unnest($1::text[], $2::int[], $3::int[], $4::bigint[]) AS u(subscription_id, left_queue, dlq, max_event)
     WHERE s.subscription_id = u.subscription_id`,
    [
      changed,
      changed.map((id) => per.get(id)!.left),
      changed.map((id) => per.get(id)!.dlq),
      changed.map((id) => per.get(id)!.maxEvent),
    ],
  );
  const paused = await pauseAtDlqCeiling(
    tx,
    changed.filter((id) => per.get(id)!.dlq > 0),
  );
  return { subscriptions: ids, paused };
}

/** Pauses active subscriptions whose DLQ count reached the DLQ ceiling, with an audit row each. */
export async function pauseAtDlqCeiling(tx: Queryable, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const res = await tx.query<{
    subscription_id: string;
    tenant_id: string;
    dlq_count: number;
    dlq_ceiling: number;
  }>(
    `UPDATE subscriptions SET status = 'paused', pause_reason = 'dlq_ceiling', paused_at = now(), updated_at = now()
     WHERE subscription_id = ANY($1::text[]) AND status = 'active' AND dlq_count >= dlq_ceiling
     RETURNING subscription_id, tenant_id, dlq_count, dlq_ceiling`,
    [ids],
  );
  await insertAudit(
    tx,
    res.rows.map((s) =>
      ceilingPauseAudit({ ...s, reason: "dlq_ceiling", count: s.dlq_count, ceiling: s.dlq_ceiling }),
    ),
  );
  return res.rows.map((r) => r.subscription_id);
}

/**
 * Settles in_flight rows whose lease expired (their dispatcher died or hung): the POST may have been
 * sent, so the attempt counts as failed (`unknown`, "worker lost") and attempt + 1 is queued due at
 * once; a lost last attempt goes to the DLQ. Returns the subscriptions touched.
 */
export async function settleExpiredLeases(
  db: Db,
  opts: { maxAttempts: number; detail: string; limit: number },
): Promise<{ settled: number; subscriptions: string[]; paused: string[] }> {
  return db.transaction(async (tx) => {
    const res = await tx.query<Recorded>(
      `WITH expired AS (
         SELECT delivery_id FROM deliveries
         WHERE status = 'in_flight' AND lease_expires_at < now()
         ORDER BY lease_expires_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       )
       UPDATE deliveries d
       SET status = CASE WHEN d.attempt_number >= $1 THEN 'dlq' ELSE 'failed' END,
           completed_at = now(), error_kind = 'unknown', error_detail = $2,
           lease_owner = NULL, lease_expires_at = NULL
       FROM expired
       WHERE d.delivery_id = expired.delivery_id
       RETURNING d.delivery_id, d.subscription_id, d.event_id, d.position, d.webhook_id, d.attempt_number, d.status,
                 0 AS retry_delay_ms`,
      [opts.maxAttempts, opts.detail, opts.limit],
    );
    await queueRetries(
      tx,
      res.rows.filter((r) => r.status === "failed"),
    );
    const { subscriptions, paused } = await applyCounters(tx, res.rows);
    return { settled: res.rows.length, subscriptions, paused };
  });
}
