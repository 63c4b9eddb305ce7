import type { Queryable } from "./db.ts";

/**
 * Records one sample per live subscription whose pending count, DLQ count or paused state changed since
 * its latest sample, or whose latest sample is older than `refreshMs`. The time is the start of the
 * current tick (`now()` binned to `intervalMs`), so several samplers racing the same tick write it once.
 * Returns how many rows were written.
 */
export async function recordSamples(
  q: Queryable,
  opts: { intervalMs: number; refreshMs: number },
): Promise<number> {
  const r = await q.query(
    `WITH tick AS (
       SELECT date_bin($1::double precision * interval '1 millisecond', now(),
                       TIMESTAMPTZ '1970-01-01 00:00:00+00') AS at
     )
     INSERT INTO subscription_samples (subscription_id, sampled_at, pending_count, dlq_count, paused)
     SELECT s.subscription_id, tick.at, s.pending_count, s.dlq_count, s.status = 'paused'
     FROM subscriptions s
     CROSS JOIN tick
     LEFT JOIN LATERAL (
       SELECT p.sampled_at, p.pending_count, p.dlq_count, p.paused FROM subscription_samples p
       WHERE p.subscription_id = s.subscription_id
       ORDER BY p.sampled_at DESC LIMIT 1
     ) last ON true
     WHERE s.deleted_at IS NULL
       AND (last.sampled_at IS NULL
            OR last.pending_count <> s.pending_count
            OR last.dlq_count <> s.dlq_count
            OR last.paused <> (s.status = 'paused')
            OR last.sampled_at <= tick.at - $2::double precision * interval '1 millisecond')
     ON CONFLICT (subscription_id, sampled_at) DO NOTHING`,
    [opts.intervalMs, opts.refreshMs],
  );
  return r.rowCount;
}

/** Deletes up to `limit` samples older than `retentionMs`; returns how many went. */
export async function pruneSamples(
  q: Queryable,
  opts: { retentionMs: number; limit: number },
): Promise<number> {
  const r = await q.query(
    `DELETE FROM subscription_samples
     WHERE (subscription_id, sampled_at) IN (
       SELECT subscription_id, sampled_at FROM subscription_samples
       WHERE sampled_at < now() - $1::double precision * interval '1 millisecond'
       LIMIT $2
     )`,
    [opts.retentionMs, opts.limit],
  );
  return r.rowCount;
}

/** The store's clock and the earliest sample kept (null when there is none). */
export async function sampleClock(q: Queryable): Promise<{ now: Date; earliest: Date | null }> {
  const r = await q.query<{ now: Date; earliest: Date | null }>(
    "SELECT now() AS now, (SELECT min(sampled_at) FROM subscription_samples) AS earliest",
  );
  return r.rows[0]!;
}

export interface SampleValue {
  subscription_id: string;
  pending_count: number;
  dlq_count: number;
  paused: boolean;
}

/** Each subscription's latest sample at or before `at` (the value a chart starts from). */
export async function samplesAt(q: Queryable, ids: readonly string[], at: Date): Promise<SampleValue[]> {
  if (ids.length === 0) return [];
  const r = await q.query<SampleValue>(
    `SELECT i.id AS subscription_id, x.pending_count, x.dlq_count, x.paused
     FROM unnest($1::text[]) AS i(id)
     CROSS JOIN LATERAL (
       SELECT pending_count, dlq_count, paused FROM subscription_samples
       WHERE subscription_id = i.id AND sampled_at <= $2
       ORDER BY sampled_at DESC LIMIT 1
     ) x`,
    [ids, at],
  );
  return r.rows;
}

export interface SampleBucket {
  subscription_id: string;
  /** 0-based index of the bucket after `from`. */
  bucket: number;
  pending_max: number;
  dlq_max: number;
  paused: boolean;
  /** The bucket's latest sample: what holds until the next one. */
  pending_last: number;
  dlq_last: number;
  paused_last: boolean;
}

/** Samples after `from`, grouped into buckets of `bucketMs`: the peaks and the last values of each. */
export async function sampleBuckets(
  q: Queryable,
  ids: readonly string[],
  from: Date,
  bucketMs: number,
): Promise<SampleBucket[]> {
  if (ids.length === 0) return [];
  const r = await q.query<SampleBucket>(
    `SELECT subscription_id,
            floor(extract(epoch FROM (sampled_at - $2::timestamptz)) * 1000 / $3)::int AS bucket,
            max(pending_count)::int AS pending_max,
            max(dlq_count)::int AS dlq_max,
            bool_or(paused) AS paused,
            (array_agg(pending_count ORDER BY sampled_at DESC))[1] AS pending_last,
            (array_agg(dlq_count ORDER BY sampled_at DESC))[1] AS dlq_last,
            (array_agg(paused ORDER BY sampled_at DESC))[1] AS paused_last
     FROM subscription_samples
     WHERE subscription_id = ANY($1::text[]) AND sampled_at > $2
     GROUP BY 1, 2
     ORDER BY 1, 2`,
    [ids, from, bucketMs],
  );
  return r.rows;
}
