import { type Db, synchronousCommit } from "./db.ts";
import type { Ordering } from "./types.ts";

/** A claimed delivery with what the sender needs: the message and where it goes. */
export interface ClaimedDelivery {
  delivery_id: number;
  subscription_id: string;
  event_id: number;
  webhook_id: string;
  attempt_number: number;
  ordering: Ordering;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  event_type: string;
  occurred_at: Date;
  payload: unknown;
}

export interface ClaimResult {
  deliveries: ClaimedDelivery[];
  /** Subscriptions looked at. */
  examined: number;
  /** True when every subscription with work was looked at (fewer than the limit were found). */
  exhausted: boolean;
  /** The last subscription looked at: the `after` of the next claim, so the walk goes round. */
  cursor: string | null;
  /** Candidates left out because `exclude` said so (a push drain holds them). */
  excluded: number;
}

export interface ClaimOptions {
  owner: string;
  leaseMs: number;
  /** Most deliveries to claim in this call. */
  limit: number;
  /** Most deliveries of one unordered subscription in this call (besides max_in_flight). */
  perSubscriptionLimit?: number;
  /**
   * How many more POSTs this process lets one subscription start now (its fair share of the process's
   * slots minus what it already has in flight here); default no limit beyond `limit`.
   */
  allowance?: (subscriptionId: string) => number;
  /**
   * The fair-share reserve: past this many rows the call takes only the first row of queues for which
   * `fresh` says yes (queues with no POST out in this process); default `limit`, no reserve.
   */
  sharedLimit?: number;
  /** Whether a queue has no POST out in this process (see `sharedLimit`); default yes. */
  fresh?: (subscriptionId: string) => boolean;
  /** Most subscriptions to look at in this call. */
  subscriptionLimit?: number;
  /** Start the walk over subscriptions with work after this id (round-robin; the last call's cursor). */
  after?: string | null;
  /** Only these subscriptions (a push drain); default all with work. */
  subscriptionIds?: readonly string[];
  /**
   * Of the candidate subscriptions, which to leave alone this time (e.g. those a push drain holds). An
   * error here is ignored: correctness never rests on it.
   */
  exclude?: (subscriptionIds: readonly string[]) => Promise<ReadonlySet<string>>;
  /** Wait for the WAL flush at commit (HERALD_DISPATCH_SYNC_COMMIT); default no (docs/delivery.md). */
  syncCommit?: boolean;
}

/**
 * The head of the queue of the subscription `subscriptionId` (an SQL expression) as a subquery: the row
 * with the lowest position among pending and in-flight ones, its status and due time. One probe of
 * `deliveries_active_by_position`.
 */
function queueHeadOf(subscriptionId: string): string {
  return `SELECT h.delivery_id, h.status, h.scheduled_at FROM deliveries h
      WHERE h.subscription_id = ${subscriptionId} AND h.status IN ('pending', 'in_flight')
      ORDER BY h.position LIMIT 1`;
}

/**
 * What the sender needs of a claimed row `c` (its subscription `s` and event `e`), as laterals read by primary
 * key: used by the claim and by the record that claims an ordered queue's next head.
 */
export const SENDER_LATERALS = `CROSS JOIN LATERAL (
    SELECT s.ordering, s.url, s.secret, s.previous_secret, s.previous_secret_expires_at FROM subscriptions s
    WHERE s.subscription_id = c.subscription_id OFFSET 0
  ) s
  CROSS JOIN LATERAL (
    SELECT e.event_type, e.occurred_at, e.payload FROM events e WHERE e.event_id = c.event_id OFFSET 0
  ) e`;

/** Advisory-lock key space of claims (two-key form: this, hashtext(subscription_id)). */
const CLAIM_LOCK_SPACE = 0x48524c44;

/**
 * Live, active subscriptions with queued work, in id order starting after `after` and wrapping round.
 * Reads the partial index `subscriptions_with_work`; locks and writes nothing.
 */
const WITH_WORK_SQL = `
  (SELECT subscription_id FROM subscriptions
   WHERE deleted_at IS NULL AND status = 'active' AND has_work AND subscription_id > COALESCE($1, '')
   ORDER BY subscription_id LIMIT $2)
  UNION ALL
  (SELECT subscription_id FROM subscriptions
   WHERE deleted_at IS NULL AND status = 'active' AND has_work AND subscription_id <= $1
   ORDER BY subscription_id LIMIT $2)
  LIMIT $2`;

/**
 * The claim, one statement (its own transaction). Every read is an index range scan bounded by what it
 * takes, so the plan does not depend on planner statistics:
 * - `open`: each candidate's subscription row by primary key (a lateral the planner cannot turn into a
 *   join that scans every subscription with work when its statistics say the table is nearly empty);
 * - `mine`: the candidates still live, active and with work, each under a transaction-scoped advisory
 *   lock taken with try (two claimers never evaluate one queue at once; a queue another claimer is
 *   evaluating is skipped). The subscription row itself is neither locked nor written, so accepting and
 *   recording never wait for a claim.
 * - ordered: the queue's head (lowest position among pending + in_flight, `deliveries_active_by_position`),
 *   only if it is pending and due — nothing while the head is in flight or in back-off;
 * - unordered: due pending rows in due order (`deliveries_due_by_subscription`), at most max_in_flight
 *   minus the rows in flight (`deliveries_in_flight`), the process's allowance and the per-queue limit;
 * - round-robin: every queue's first pick before any queue's second, up to the call's limit; past
 *   `sharedLimit` only the first pick of a queue with nothing out in this process (the fair-share reserve);
 * - the flip to in_flight is conditional on the row still being pending: a claimer that read an older
 *   snapshot (a row another claimer took a moment ago) finds the row changed and skips it, so no row is
 *   ever claimed twice and an ordered queue's second row never goes while its head is out.
 * On PostgreSQL this runs on a generic plan, made once per session (src/store/pg-db.ts), which cannot see
 * its parameters: it guesses a tenth of the rows for `LIMIT $6`. So every step that could turn into a join
 * over a whole table is written as a per-row probe: the flip finds its rows by primary key from an array
 * (a hash join over a sequential scan of `deliveries` otherwise, with one busy queue), the subscription and
 * event of each claimed row are laterals, and the status the flip requires is a sub-select, whose value no
 * plan sees when it is made, so it cannot be matched to the partial indexes on `status = 'pending'` (with
 * tables never analyzed, a plan read one of them whole to intersect it with the primary key).
 * test/store/generic-plans.test.ts and test/store/claim-plan.test.ts.
 */
const CLAIM_SQL = `
  WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::int[], $8::boolean[]) WITH ORDINALITY AS w(subscription_id, allowance, fresh, turn)
  ), open AS (
    SELECT s.subscription_id, s.ordering, s.max_in_flight, w.allowance, w.fresh, w.turn
    FROM wanted w
    CROSS JOIN LATERAL (
      SELECT s.subscription_id, s.ordering, s.max_in_flight FROM subscriptions s
      WHERE s.subscription_id = w.subscription_id
        AND s.deleted_at IS NULL AND s.status = 'active' AND s.has_work
      OFFSET 0
    ) s
    WHERE w.allowance > 0
    OFFSET 0
  ), mine AS (
    SELECT * FROM open WHERE pg_try_advisory_xact_lock(${CLAIM_LOCK_SPACE}, hashtext(open.subscription_id))
  ), ordered_heads AS (
    SELECT h.delivery_id, 1::bigint AS rn, m.turn, m.fresh
    FROM mine m
    CROSS JOIN LATERAL (${queueHeadOf("m.subscription_id")}) h
    WHERE m.ordering = 'ordered' AND h.status = 'pending' AND h.scheduled_at <= now()
  ), room AS (
    SELECT m.subscription_id, m.turn, m.fresh, LEAST(m.max_in_flight - f.n, m.allowance, $5::int) AS room
    FROM mine m
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS n FROM deliveries f WHERE f.subscription_id = m.subscription_id AND f.status = 'in_flight'
    ) f
    WHERE m.ordering = 'unordered'
  ), unordered_due AS (
    SELECT u.delivery_id, row_number() OVER (PARTITION BY r.subscription_id ORDER BY u.scheduled_at, u.position) AS rn,
           r.turn, r.fresh
    FROM room r
    CROSS JOIN LATERAL (
      SELECT d.delivery_id, d.scheduled_at, d.position FROM deliveries d
      WHERE d.subscription_id = r.subscription_id AND d.status = 'pending' AND d.scheduled_at <= now()
      ORDER BY d.scheduled_at, d.position
      LIMIT r.room
    ) u
    WHERE r.room > 0
  ), picked AS (
    SELECT delivery_id FROM (
      SELECT x.delivery_id, x.rn, x.fresh, row_number() OVER (ORDER BY x.rn, x.turn) AS k FROM (
        SELECT delivery_id, rn, turn, fresh FROM ordered_heads
        UNION ALL
        SELECT delivery_id, rn, turn, fresh FROM unordered_due
      ) x
    ) y
    WHERE y.k <= $6 AND (y.k <= $9 OR (y.rn = 1 AND y.fresh))
  ), claimed AS (
    UPDATE deliveries d
    SET status = 'in_flight', attempted_at = now(), lease_owner = $3,
        lease_expires_at = now() + ($4::double precision * interval '1 millisecond')
    WHERE d.delivery_id = ANY (ARRAY(SELECT delivery_id FROM picked)) AND d.status = (SELECT 'pending'::text)
    RETURNING d.delivery_id, d.subscription_id, d.event_id, d.webhook_id, d.attempt_number, d.position
  )
  SELECT c.delivery_id, c.subscription_id, c.event_id, c.webhook_id, c.attempt_number, s.ordering, s.url,
         s.secret, s.previous_secret, s.previous_secret_expires_at, e.event_type, e.occurred_at, e.payload
  FROM claimed c
  ${SENDER_LATERALS}
  CROSS JOIN (SELECT set_config('synchronous_commit', $7, true)) AS durability
  ORDER BY c.subscription_id, c.position`;

/**
 * Claims due deliveries and marks them in_flight with a lease: at most two statements, no explicit
 * transaction. Without `subscriptionIds` it first reads which subscriptions have work (round-robin from
 * `after`), asks `exclude` which to leave alone, then claims from the rest in one statement (CLAIM_SQL).
 * The order guarantee rests on the database (the conditional flip to in_flight), not on any lock held in
 * memory or in Redis.
 */
export async function claimDue(db: Db, opts: ClaimOptions): Promise<ClaimResult> {
  let ids: readonly string[];
  let exhausted = true;
  let cursor: string | null = null;
  if (opts.subscriptionIds) {
    ids = opts.subscriptionIds;
  } else {
    const subLimit = opts.subscriptionLimit ?? Math.max(opts.limit, 64);
    const found = await db.query<{ subscription_id: string }>(WITH_WORK_SQL, [opts.after ?? null, subLimit], {
      name: "herald_with_work",
    });
    ids = found.rows.map((r) => r.subscription_id);
    exhausted = ids.length < subLimit;
    cursor = ids.at(-1) ?? null;
  }
  const examined = ids.length;
  let candidates = ids;
  if (opts.exclude && candidates.length > 0) {
    const skip = await opts.exclude(candidates).catch(() => new Set<string>());
    if (skip.size > 0) candidates = candidates.filter((id) => !skip.has(id));
  }
  const excluded = ids.length - candidates.length;
  if (candidates.length === 0 || opts.limit <= 0) {
    return { deliveries: [], examined, exhausted, cursor, excluded };
  }
  const res = await db.query<ClaimedDelivery>(
    CLAIM_SQL,
    [
      candidates,
      candidates.map((id) => opts.allowance?.(id) ?? opts.limit),
      opts.owner,
      opts.leaseMs,
      opts.perSubscriptionLimit ?? opts.limit,
      opts.limit,
      synchronousCommit(opts.syncCommit),
      candidates.map((id) => opts.fresh?.(id) ?? true),
      opts.sharedLimit ?? opts.limit,
    ],
    { name: "herald_claim" },
  );
  return { deliveries: res.rows, examined, exhausted, cursor, excluded };
}

/**
 * The earliest future scheduled_at among pending rows of active subscriptions (the scheduler's next
 * wake-up: a retry whose back-off ends; resuming a paused queue wakes the dispatcher by itself). Rows
 * already due are the dispatcher's business. One index probe per subscription with work.
 */
export async function nextDueAt(db: Db): Promise<Date | null> {
  const r = await db.query<{ at: Date | null }>(
    `SELECT min(n.at) AS at
     FROM subscriptions s
     CROSS JOIN LATERAL (
       SELECT d.scheduled_at AS at FROM deliveries d
       WHERE d.subscription_id = s.subscription_id AND d.status = 'pending' AND d.scheduled_at > now()
       ORDER BY d.scheduled_at LIMIT 1
     ) n
     WHERE s.deleted_at IS NULL AND s.status = 'active' AND s.has_work`,
  );
  return r.rows[0]?.at ?? null;
}

/**
 * Of these subscriptions, those whose queue has something a claim could take now: live, active, with an
 * ordered head that is pending and due, or unordered due rows. (A full max_in_flight still answers yes:
 * the caller bounds how often it asks.)
 */
export async function queuesReady(db: Db, subscriptionIds: readonly string[]): Promise<string[]> {
  if (subscriptionIds.length === 0) return [];
  const r = await db.query<{ subscription_id: string }>(
    `SELECT s.subscription_id FROM subscriptions s
     WHERE s.subscription_id = ANY($1::text[]) AND s.deleted_at IS NULL AND s.status = 'active'
       AND s.has_work
       AND CASE WHEN s.ordering = 'ordered' THEN (
             SELECT head.status = 'pending' AND head.scheduled_at <= now()
             FROM (${queueHeadOf("s.subscription_id")}) head)
           ELSE EXISTS (
             SELECT 1 FROM deliveries d
             WHERE d.subscription_id = s.subscription_id AND d.status = 'pending' AND d.scheduled_at <= now())
           END`,
    [subscriptionIds],
    { name: "herald_queues_ready" },
  );
  return r.rows.map((row) => row.subscription_id);
}

/** Of these subscriptions, those whose head (lowest position among pending + in_flight) waits in back-off. */
export async function queuesInBackoff(db: Db, subscriptionIds: readonly string[]): Promise<string[]> {
  if (subscriptionIds.length === 0) return [];
  const r = await db.query<{ subscription_id: string }>(
    `SELECT w.subscription_id FROM unnest($1::text[]) AS w(subscription_id)
     CROSS JOIN LATERAL (${queueHeadOf("w.subscription_id")}) h
     WHERE h.status = 'pending' AND h.scheduled_at > now()`,
    [subscriptionIds],
  );
  return r.rows.map((row) => row.subscription_id);
}
