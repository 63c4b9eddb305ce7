import type { Db } from "./db.ts";
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
  /** Most subscriptions to look at in this call (round-robin by last claim). */
  subscriptionLimit?: number;
  /** Only these subscriptions (a push drain); default all with work. */
  subscriptionIds?: readonly string[];
  /**
   * Of the locked candidate subscriptions, which to leave alone this time (e.g. those a push drain
   * holds). An error here is ignored: correctness never rests on it.
   */
  exclude?: (subscriptionIds: readonly string[]) => Promise<ReadonlySet<string>>;
}

/**
 * Claims due deliveries and marks them in_flight with a lease, in one transaction.
 *
 * 1. Lock live, active subscriptions that have queued work (`FOR UPDATE SKIP LOCKED`: two dispatchers
 *    never evaluate the same subscription at once; the least recently served come first).
 * 2. With a fresh snapshot taken after those locks, pick per subscription:
 *    ordered — its head (lowest position among pending + in_flight), only if it is pending and due,
 *    so nothing is claimed while the head is in flight or in back-off;
 *    unordered — due pending rows by position, up to max_in_flight minus what is in flight.
 * 3. Flip the picked rows to in_flight, conditional on their still being pending.
 *
 * The order guarantee therefore rests on the database, not on any lock held in memory or in Redis.
 */
export async function claimDue(db: Db, opts: ClaimOptions): Promise<ClaimResult> {
  const subLimit = opts.subscriptionLimit ?? Math.max(opts.limit, 64);
  return db.transaction(async (tx) => {
    const subs = await tx.query<{ subscription_id: string }>(
      `SELECT subscription_id FROM subscriptions
       WHERE deleted_at IS NULL AND status = 'active' AND pending_count > 0
         AND ($1::text[] IS NULL OR subscription_id = ANY($1::text[]))
       ORDER BY last_claimed_at NULLS FIRST
       LIMIT $2
       FOR UPDATE SKIP LOCKED`,
      [opts.subscriptionIds ?? null, subLimit],
    );
    if (subs.rows.length === 0) return { deliveries: [], examined: 0, exhausted: true };
    const ids = subs.rows.map((r) => r.subscription_id);
    // Every examined queue moves to the back of the line, served or not, so queues in back-off or
    // with a head in flight cannot hide the others from the next claim.
    await tx.query(
      "UPDATE subscriptions SET last_claimed_at = clock_timestamp() WHERE subscription_id = ANY($1::text[])",
      [ids],
    );
    const exhausted = subs.rows.length < subLimit;
    let candidates = ids;
    if (opts.exclude) {
      const skip = await opts.exclude(ids).catch(() => new Set<string>());
      if (skip.size > 0) candidates = ids.filter((id) => !skip.has(id));
      if (candidates.length === 0) return { deliveries: [], examined: ids.length, exhausted };
    }
    const claimed = await tx.query<{ delivery_id: number; subscription_id: string }>(
      `WITH wanted AS (
         SELECT * FROM unnest($1::text[], $6::int[]) WITH ORDINALITY AS w(subscription_id, allowance, turn)
       ), locked AS (
         SELECT s.subscription_id, s.ordering, s.max_in_flight, w.allowance, w.turn
         FROM subscriptions s JOIN wanted w ON w.subscription_id = s.subscription_id
       ), ordered_heads AS (
         SELECT h.delivery_id, h.position, 1::bigint AS rn, l.turn
         FROM locked l
         CROSS JOIN LATERAL (
           SELECT d.delivery_id, d.status, d.scheduled_at, d.position FROM deliveries d
           WHERE d.subscription_id = l.subscription_id AND d.status IN ('pending', 'in_flight')
           ORDER BY d.position LIMIT 1
         ) h
         WHERE l.ordering = 'ordered' AND h.status = 'pending' AND h.scheduled_at <= now() AND l.allowance > 0
       ), unordered_due AS (
         SELECT u.delivery_id, u.position,
                row_number() OVER (PARTITION BY l.subscription_id ORDER BY u.position) AS rn, l.turn
         FROM locked l
         CROSS JOIN LATERAL (
           SELECT count(*)::int AS n FROM deliveries f
           WHERE f.subscription_id = l.subscription_id AND f.status = 'in_flight'
         ) inflight
         CROSS JOIN LATERAL (
           SELECT d.delivery_id, d.position FROM deliveries d
           WHERE d.subscription_id = l.subscription_id AND d.status = 'pending' AND d.scheduled_at <= now()
           ORDER BY d.position
           LIMIT GREATEST(0, LEAST(l.max_in_flight - inflight.n, l.allowance, $5::int))
         ) u
         WHERE l.ordering = 'unordered'
       ), picked AS (
         -- Round-robin across subscriptions: every queue's first pick before any queue's second.
         SELECT delivery_id FROM (
           SELECT delivery_id, rn, turn FROM ordered_heads
           UNION ALL
           SELECT delivery_id, rn, turn FROM unordered_due
         ) x
         ORDER BY rn, turn
         LIMIT $4
       )
       UPDATE deliveries d
       SET status = 'in_flight', attempted_at = now(), lease_owner = $2,
           lease_expires_at = now() + ($3::double precision * interval '1 millisecond')
       FROM picked
       WHERE d.delivery_id = picked.delivery_id AND d.status = 'pending'
       RETURNING d.delivery_id, d.subscription_id`,
      [
        candidates,
        opts.owner,
        opts.leaseMs,
        opts.limit,
        opts.perSubscriptionLimit ?? opts.limit,
        candidates.map((id) => opts.allowance?.(id) ?? opts.limit),
      ],
    );
    if (claimed.rows.length === 0) return { deliveries: [], examined: ids.length, exhausted };
    const full = await tx.query<ClaimedDelivery>(
      `SELECT d.delivery_id, d.subscription_id, d.event_id, d.webhook_id, d.attempt_number, s.ordering, s.url,
              s.secret, s.previous_secret, s.previous_secret_expires_at, e.event_type, e.occurred_at, e.payload
       FROM deliveries d
       JOIN subscriptions s ON s.subscription_id = d.subscription_id
       JOIN events e ON e.event_id = d.event_id
       WHERE d.delivery_id = ANY($1::bigint[])
       ORDER BY d.subscription_id, d.position`,
      [claimed.rows.map((r) => r.delivery_id)],
    );
    return { deliveries: full.rows, examined: ids.length, exhausted };
  });
}

/**
 * The earliest future scheduled_at among pending rows (the scheduler's next wake-up: a retry whose
 * back-off ends). Rows already due are the dispatcher's business.
 */
export async function nextDueAt(db: Db): Promise<Date | null> {
  const r = await db.query<{ at: Date | null }>(
    "SELECT min(scheduled_at) AS at FROM deliveries WHERE status = 'pending' AND scheduled_at > now()",
  );
  return r.rows[0]?.at ?? null;
}

/** The head of a queue (lowest position among pending + in_flight), or null when the queue is empty. */
export async function queueHead(
  db: Db,
  subscriptionId: string,
): Promise<{ delivery_id: number; event_id: number; status: "pending" | "in_flight"; due: boolean } | null> {
  const r = await db.query<{
    delivery_id: number;
    event_id: number;
    status: "pending" | "in_flight";
    due: boolean;
  }>(
    `SELECT delivery_id, event_id, status, scheduled_at <= now() AS due FROM deliveries
     WHERE subscription_id = $1 AND status IN ('pending', 'in_flight')
     ORDER BY position LIMIT 1`,
    [subscriptionId],
  );
  return r.rows[0] ?? null;
}
