import { CEILING_PAUSE_TEXT, ceilingPauseSet } from "./audit.ts";
import type { Queryable } from "./db.ts";
import type { NewEvent } from "./events.ts";

export interface FannedOutEvent {
  /** The event's index in the input. */
  ord: number;
  event_id: number;
  /** Deliveries queued for it (one per matching live subscription). */
  deliveries: number;
}

export interface FanOut {
  /** The events inserted, in input order; an event whose (tenant, idempotency key) already existed is absent. */
  inserted: FannedOutEvent[];
  /** Subscriptions that got deliveries. */
  queuedFor: string[];
  /** Subscriptions this statement paused at their pending ceiling. */
  paused: string[];
}

/**
 * Accepting events, one statement:
 *
 * 1. `targets`: every live subscription of the input's tenants that wants any of its event types (only
 *    those in $10 when given: a re-trigger job aimed at some subscriptions), locked in id order — the
 *    order the record statement locks them in, so the two cannot deadlock. A row updated since the
 *    statement began is read in its latest version, so positions and counters are exact.
 * 2. `ins`: the events, ids in input order; one whose (tenant, idempotency key) exists is skipped.
 *    `numbered` reads `targets` first, so the rows are locked before the events are written: taken after
 *    the insert, the locks met rows that the dispatcher's records had updated meanwhile, and re-reading
 *    each of those made the ordered benchmark's accept several times slower (bench/HISTORY.md, sixth round).
 * 3. `pairs`: one attempt-1 pending delivery (due now) per new event and matching subscription, numbered
 *    on from the subscription's next position in event order. Its webhook-id, `msg_<event id>_<subscription
 *    id without "sub_">`, is stable per event and subscription: retries and replays copy it.
 * 4. `counted`: each subscription's position and pending count moved on; one whose pending count reaches
 *    its ceiling while active is paused, and `audited` writes that pause's audit row (the count is the
 *    one at which it paused).
 *
 * The subscription rows stay locked until the statement's transaction commits, with no client round trip
 * in between (`record` waits for them). $11 is the audit reason's text. The result has one row per new
 * event (ord, event_id, deliveries) and one per subscription that got deliveries (subscription_id, paused).
 */
const ACCEPT_SQL = `
  WITH input AS (
    SELECT t.tenant_id, t.event_type, t.aggregate_id, t.occurred_at, p.payload, t.idempotency_key,
           t.source_txn_id, t.retrigger_of, t.job_id, t.ord
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::text[], $7::text[], $8::bigint[],
                $9::bigint[])
      WITH ORDINALITY AS t(tenant_id, event_type, aggregate_id, occurred_at, idempotency_key, source_txn_id,
                           retrigger_of, job_id, ord)
    JOIN jsonb_array_elements($5::jsonb) WITH ORDINALITY AS p(payload, ord) ON p.ord = t.ord
  ), targets AS (
    SELECT s.subscription_id, s.tenant_id, s.event_types, s.status, s.next_position, s.pending_count,
           s.pending_ceiling
    FROM subscriptions s
    WHERE s.tenant_id = ANY ($1::text[]) AND s.deleted_at IS NULL
      AND (s.event_types && $2::text[] OR '*' = ANY (s.event_types))
      AND ($10::text[] IS NULL OR s.subscription_id = ANY ($10::text[]))
    ORDER BY s.subscription_id
    FOR UPDATE
  ), numbered AS (
    SELECT nextval(pg_get_serial_sequence('events', 'event_id')) AS event_id, input.*
    FROM input WHERE (SELECT count(*) FROM targets) >= 0 ORDER BY ord
  ), ins AS (
    INSERT INTO events (event_id, tenant_id, event_type, aggregate_id, occurred_at, payload, idempotency_key,
                        source_txn_id, retrigger_of, job_id)
    OVERRIDING SYSTEM VALUE
    SELECT event_id, tenant_id, event_type, aggregate_id, occurred_at, payload, idempotency_key,
           source_txn_id, retrigger_of, job_id
    FROM numbered ORDER BY ord
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING event_id, tenant_id, event_type
  ), fresh AS (
    SELECT ins.event_id, ins.tenant_id, ins.event_type, numbered.ord
    FROM ins JOIN numbered USING (event_id)
  ), pairs AS (
    SELECT f.event_id, f.ord, t.subscription_id, t.tenant_id, t.status, t.next_position, t.pending_count,
           t.pending_ceiling,
           t.next_position + row_number() OVER (PARTITION BY t.subscription_id ORDER BY f.ord) AS position
    FROM fresh f
    JOIN targets t ON t.tenant_id = f.tenant_id AND (f.event_type = ANY (t.event_types) OR '*' = ANY (t.event_types))
  ), queued AS (
    INSERT INTO deliveries (subscription_id, event_id, position, webhook_id, attempt_number, status, scheduled_at)
    SELECT subscription_id, event_id, position,
           'msg_' || event_id || '_' ||
             CASE WHEN left(subscription_id, 4) = 'sub_' THEN substr(subscription_id, 5) ELSE subscription_id END,
           1, 'pending', now()
    FROM pairs ORDER BY ord, subscription_id
  ), per AS (
    SELECT subscription_id, tenant_id, pending_ceiling,
           next_position + count(*) AS next_position,
           pending_count + count(*) AS pending_count,
           (status = 'active' AND pending_count + count(*) >= pending_ceiling) AS pauses,
           GREATEST(pending_count + 1, pending_ceiling) AS count_at_pause
    FROM pairs
    GROUP BY subscription_id, tenant_id, status, next_position, pending_count, pending_ceiling
  ), counted AS (
    UPDATE subscriptions s
    SET next_position = u.next_position, pending_count = u.pending_count,
        ${ceilingPauseSet("pending_ceiling")}
    FROM per u
    WHERE s.subscription_id = u.subscription_id
  ), audited AS (
    INSERT INTO audit_log (actor, action, tenant_id, subscription_id, reason, before, after)
    SELECT 'system', 'subscription.paused', tenant_id, subscription_id,
           format('%s (%s of %s)', $11::text, count_at_pause, pending_ceiling),
           jsonb_build_object('status', 'active', 'pause_reason', NULL),
           jsonb_build_object('status', 'paused', 'pause_reason', 'pending_ceiling', 'pending_count', count_at_pause)
    FROM per WHERE pauses
  ), tally AS (
    SELECT f.ord, f.event_id, count(p.event_id)::int AS deliveries
    FROM fresh f LEFT JOIN pairs p USING (event_id)
    GROUP BY f.ord, f.event_id
  )
  SELECT ord::int - 1 AS ord, event_id, deliveries, NULL::text AS subscription_id, NULL::boolean AS paused
  FROM tally
  UNION ALL
  SELECT NULL, NULL, NULL, subscription_id, pauses FROM per
  ORDER BY ord, subscription_id`;

interface AcceptRow {
  ord: number | null;
  event_id: number | null;
  deliveries: number | null;
  subscription_id: string | null;
  paused: boolean | null;
}

/**
 * Inserts events and fans them out (ACCEPT_SQL): in the caller's transaction, or alone as one
 * autocommitted statement. `onlySubscriptionIds` restricts the fan-out to those subscriptions.
 */
export async function insertAndFanOut(
  q: Queryable,
  events: readonly NewEvent[],
  onlySubscriptionIds?: readonly string[],
): Promise<FanOut> {
  const res = await q.query<AcceptRow>(ACCEPT_SQL, [
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
    onlySubscriptionIds ?? null,
    CEILING_PAUSE_TEXT.pending_ceiling,
  ]);
  const out: FanOut = { inserted: [], queuedFor: [], paused: [] };
  for (const r of res.rows) {
    if (r.subscription_id === null) {
      out.inserted.push({ ord: r.ord ?? 0, event_id: r.event_id ?? 0, deliveries: r.deliveries ?? 0 });
    } else {
      out.queuedFor.push(r.subscription_id);
      if (r.paused === true) out.paused.push(r.subscription_id);
    }
  }
  return out;
}
