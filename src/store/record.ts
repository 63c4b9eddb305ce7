import { CEILING_PAUSE_TEXT, ceilingPauseAudit, ceilingPauseSet, insertAudit } from "./audit.ts";
import { type ClaimedDelivery, SENDER_LATERALS } from "./claim.ts";
import { type Db, type Queryable, synchronousCommit } from "./db.ts";
import { LOST_OWNERS_SQL } from "./sessions.ts";

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

export interface RecordSummary {
  recorded: number;
  /** Results for rows no longer in flight under this owner (lease expired and taken back): ignored. */
  stale: number;
  /** Subscriptions paused by reaching their DLQ ceiling in this transaction. */
  paused: string[];
  /** Subscriptions whose queue changed (their next head may now be due). */
  subscriptions: string[];
  /** Next heads of ordered queues claimed by the same statement (with `chainLeaseMs`). */
  chained: ClaimedDelivery[];
}

/**
 * What follows a `done` CTE (the rows that just left in_flight, shaped like `Recorded`), in the same
 * statement: a retry row for each failure (same event, position and webhook-id; attempt + 1; due after
 * the back-off), then the counters of the subscriptions whose rows left the queue (pending_count down,
 * dlq_count up, the ordered cursor on), locked in id order — the same order as fan-out, so the two cannot
 * deadlock — and, for one whose DLQ count reaches its ceiling, the pause and its audit row. $1 is the
 * audit reason's text (CEILING_PAUSE_TEXT.dlq_ceiling), $2 the transaction's synchronous_commit. One statement: the subscription rows are locked
 * for its execution and commit only, never across client round trips.
 */
function settleSql(done: string, chain = ""): string {
  return `
  WITH ${done}, retried AS (
    INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
    SELECT subscription_id, event_id, position, webhook_id, attempt_number + 1, 'pending',
           now() + (COALESCE(retry_delay_ms, 0)::double precision * interval '1 millisecond')
    FROM done WHERE status = 'failed'
  ), per AS (
    SELECT subscription_id,
           (count(*) FILTER (WHERE status <> 'failed'))::int AS left_queue,
           (count(*) FILTER (WHERE status = 'dlq'))::int AS dlq,
           COALESCE(max(event_id) FILTER (WHERE status <> 'failed'), 0) AS max_event
    FROM done GROUP BY subscription_id
  ), locked AS (
    SELECT s.subscription_id, s.status, s.dlq_count, s.dlq_ceiling, s.ordering, s.deleted_at
    FROM subscriptions s
    WHERE s.subscription_id IN (SELECT subscription_id FROM per WHERE left_queue > 0)
    ORDER BY s.subscription_id
    FOR UPDATE
  ), decided AS (
    SELECT p.subscription_id, p.left_queue, p.dlq, p.max_event,
           (l.status = 'active' AND p.dlq > 0 AND l.dlq_count + p.dlq >= l.dlq_ceiling) AS pauses
    FROM per p JOIN locked l ON l.subscription_id = p.subscription_id
  ), counted AS (
    UPDATE subscriptions s
    SET pending_count = s.pending_count - u.left_queue,
        dlq_count = s.dlq_count + u.dlq,
        last_delivered_event_id = CASE WHEN s.ordering = 'ordered' AND u.max_event > 0
          THEN GREATEST(COALESCE(s.last_delivered_event_id, 0), u.max_event) ELSE s.last_delivered_event_id END,
        ${ceilingPauseSet("dlq_ceiling")}
    FROM decided u
    WHERE s.subscription_id = u.subscription_id
    RETURNING s.subscription_id, s.tenant_id, s.dlq_count, s.dlq_ceiling, u.pauses
  ), audited AS (
    INSERT INTO audit_log (actor, action, tenant_id, subscription_id, reason, before, after)
    SELECT 'system', 'subscription.paused', c.tenant_id, c.subscription_id,
           format('%s (%s of %s)', $1::text, c.dlq_count, c.dlq_ceiling),
           jsonb_build_object('status', 'active', 'pause_reason', NULL),
           jsonb_build_object('status', 'paused', 'pause_reason', 'dlq_ceiling', 'dlq_count', c.dlq_count)
    FROM counted c WHERE c.pauses
  )${chain ? `, ${chain}` : ""}
  SELECT set_config('synchronous_commit', $2, true) AS durability,
         (SELECT count(*) FROM done)::int AS recorded,
         COALESCE((SELECT array_agg(subscription_id ORDER BY subscription_id) FROM per), '{}') AS subscriptions,
         COALESCE((SELECT array_agg(subscription_id ORDER BY subscription_id) FROM counted WHERE pauses), '{}') AS paused,
         ${chain ? CHAINED_JSON : "'[]'::json"} AS chained`;
}

/**
 * The next head of each ordered queue whose head this batch recorded as delivered or dead, claimed by the
 * same statement (so an ordered queue costs one round trip per delivery): live, active (and not paused by
 * this statement), the head after the recorded one, pending and due. The statement's snapshot still shows
 * the recorded rows in flight, so the head is looked for past them. Positions are assigned in commit order
 * under the subscription row lock this statement also holds, so an event accepted after its snapshot can
 * only come later in the queue: nothing is skipped. The flip is conditional on the row still being pending,
 * as in every claim. $12 says whether to chain at all (not while the dispatcher stops), $13 is the lease.
 */
const CHAIN_SQL = `next_head AS (
    SELECT n.delivery_id
    FROM done d
    JOIN decided u ON u.subscription_id = d.subscription_id
    JOIN locked l ON l.subscription_id = d.subscription_id
    CROSS JOIN LATERAL (
      SELECT h.delivery_id, h.status, h.scheduled_at FROM deliveries h
      WHERE h.subscription_id = d.subscription_id AND h.status IN ('pending', 'in_flight')
        AND h.delivery_id <> d.delivery_id
      ORDER BY h.position LIMIT 1
    ) n
    WHERE $12::boolean AND d.status <> 'failed' AND l.ordering = 'ordered' AND l.status = 'active'
      AND l.deleted_at IS NULL AND NOT u.pauses AND n.status = 'pending' AND n.scheduled_at <= now()
  ), chained AS (
    UPDATE deliveries d
    SET status = 'in_flight', attempted_at = now(), lease_owner = $11,
        lease_expires_at = now() + ($13::double precision * interval '1 millisecond')
    WHERE d.delivery_id = ANY (ARRAY(SELECT delivery_id FROM next_head)) AND d.status = (SELECT 'pending'::text)
    RETURNING d.delivery_id, d.subscription_id, d.event_id, d.webhook_id, d.attempt_number
  )`;

/** The chained rows with what the sender needs, as one JSON array (dates as ISO strings, converted below). */
const CHAINED_JSON = `COALESCE((
    SELECT json_agg(json_build_object(
             'delivery_id', c.delivery_id, 'subscription_id', c.subscription_id, 'event_id', c.event_id,
             'webhook_id', c.webhook_id, 'attempt_number', c.attempt_number, 'ordering', s.ordering, 'url', s.url,
             'secret', s.secret, 'previous_secret', s.previous_secret,
             'previous_secret_expires_at', s.previous_secret_expires_at, 'event_type', e.event_type,
             'occurred_at', e.occurred_at, 'payload', e.payload))
    FROM chained c
    ${SENDER_LATERALS}
  ), '[]'::json)`;

interface Settled {
  recorded: number;
  subscriptions: string[];
  paused: string[];
  chained: Array<
    Omit<ClaimedDelivery, "occurred_at" | "previous_secret_expires_at"> & {
      occurred_at: string;
      previous_secret_expires_at: string | null;
    }
  >;
}

const RECORD_SQL = settleSql(
  `done AS (
    UPDATE deliveries d
    SET status = r.status, completed_at = now(), response_status = r.response_status,
        response_body = r.response_body, error_kind = r.error_kind, error_detail = r.error_detail,
        latency_ms = r.latency_ms, lease_owner = NULL, lease_expires_at = NULL
    FROM unnest($3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[])
      AS r(delivery_id, status, response_status, response_body, error_kind, error_detail, latency_ms, retry_delay_ms)
    WHERE d.delivery_id = r.delivery_id AND d.status = 'in_flight' AND d.lease_owner = $11
    RETURNING d.delivery_id, d.subscription_id, d.event_id, d.position, d.webhook_id, d.attempt_number, d.status,
              r.retry_delay_ms
  )`,
  CHAIN_SQL,
);

/**
 * Writes a batch of attempt results in one statement (see settleSql): each row's final state, retry rows,
 * counters, DLQ-ceiling pauses with their audit rows. Only rows still in flight under `owner` are written.
 * With `chain` (a lease length), the next head of each ordered queue that moved on is claimed for `owner`
 * in the same statement (CHAIN_SQL) and returned in `chained`, to be sent at once.
 */
export async function recordResults(
  db: Db,
  owner: string,
  results: readonly AttemptResult[],
  opts: { syncCommit?: boolean; chainLeaseMs?: number | null } = {},
): Promise<RecordSummary> {
  if (results.length === 0) return { recorded: 0, stale: 0, paused: [], subscriptions: [], chained: [] };
  const res = await db.query<Settled>(
    RECORD_SQL,
    [
      CEILING_PAUSE_TEXT.dlq_ceiling,
      synchronousCommit(opts.syncCommit),
      results.map((r) => r.delivery_id),
      results.map((r) => r.status),
      results.map((r) => r.response_status),
      results.map((r) => r.response_body),
      results.map((r) => r.error_kind),
      results.map((r) => r.error_detail),
      results.map((r) => r.latency_ms),
      results.map((r) => r.retry_delay_ms),
      owner,
      opts.chainLeaseMs != null,
      opts.chainLeaseMs ?? 0,
    ],
    { name: "herald_record" },
  );
  const row = res.rows[0] ?? { recorded: 0, subscriptions: [], paused: [], chained: [] };
  const chained = row.chained.map((c) => ({
    ...c,
    occurred_at: new Date(c.occurred_at),
    previous_secret_expires_at: c.previous_secret_expires_at ? new Date(c.previous_secret_expires_at) : null,
  }));
  return {
    recorded: row.recorded,
    stale: results.length - row.recorded,
    paused: row.paused,
    subscriptions: row.subscriptions,
    chained,
  };
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

const SETTLE_EXPIRED_SQL = settleSql(`done AS (
    UPDATE deliveries d
    SET status = CASE WHEN d.attempt_number >= $3 THEN 'dlq' ELSE 'failed' END,
        completed_at = now(), error_kind = 'unknown', error_detail = $4,
        lease_owner = NULL, lease_expires_at = NULL
    FROM (
      SELECT delivery_id FROM deliveries
      WHERE status = 'in_flight'
        AND (lease_expires_at < now() OR lease_owner <> ALL ($6::text[]) OR lease_owner IN (${LOST_OWNERS_SQL}))
      ORDER BY lease_expires_at
      LIMIT $5
      FOR UPDATE SKIP LOCKED
    ) expired
    WHERE d.delivery_id = expired.delivery_id
    RETURNING d.delivery_id, d.subscription_id, d.event_id, d.position, d.webhook_id, d.attempt_number, d.status,
              0 AS retry_delay_ms
  )`);

/**
 * Settles in_flight rows whose dispatcher is gone: its registered session ended (src/store/sessions.ts),
 * or the lease expired (a process alive but stuck, or one that never registered), or its owner is not among
 * `liveOwners` when given (the embedded store, whose one process knows every live dispatcher). The POST may have been sent, so the attempt counts as
 * failed (`unknown`, "worker lost") and attempt + 1 is queued due at once; a lost last attempt goes to the
 * DLQ. Returns the subscriptions touched.
 */
export async function settleLostAttempts(
  db: Db,
  opts: {
    maxAttempts: number;
    detail: string;
    limit: number;
    syncCommit?: boolean;
    liveOwners?: readonly string[] | null;
  },
): Promise<{ settled: number; subscriptions: string[]; paused: string[] }> {
  const res = await db.query<Settled>(SETTLE_EXPIRED_SQL, [
    CEILING_PAUSE_TEXT.dlq_ceiling,
    synchronousCommit(opts.syncCommit),
    opts.maxAttempts,
    opts.detail,
    opts.limit,
    opts.liveOwners ?? null,
  ]);
  const { recorded, subscriptions, paused } = res.rows[0] ?? { recorded: 0, subscriptions: [], paused: [] };
  return { settled: recorded, subscriptions, paused };
}
