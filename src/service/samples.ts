import { type SampleBucket, sampleBuckets, sampleClock, samplesAt } from "../store/samples.ts";
import type { ServiceContext } from "./context.ts";

/** How far back the panel's charts look. */
export const CHART_WINDOW_MS = 24 * 3600 * 1000;
/** Most points in one chart (buckets; each shows the peak of its samples). */
export const CHART_POINTS = 96;

export interface ChartPoint {
  pending: number;
  dlq: number;
  paused: boolean;
}

export interface SeriesSet {
  /** Start of the first bucket: 24 h ago, or the earliest sample kept if that is later. */
  from: Date;
  to: Date;
  bucketMs: number;
  /** Per subscription, one entry per bucket: the peak in it, or null before its first sample. */
  series: Map<string, Array<ChartPoint | null>>;
}

/**
 * Pending and DLQ counts of these subscriptions over the last 24 hours, from the sampler's rows, in
 * at most {@link CHART_POINTS} buckets. Samples are written when a number changes, so each value holds
 * until the next sample; a bucket shows the highest value it saw. The ids are ones the caller may see.
 */
export async function sampleSeries(ctx: ServiceContext, ids: readonly string[]): Promise<SeriesSet> {
  const { now, earliest } = await sampleClock(ctx.db);
  const from = new Date(Math.max(now.getTime() - CHART_WINDOW_MS, (earliest ?? now).getTime()));
  const span = now.getTime() - from.getTime();
  const bucketMs = Math.max(ctx.settings.sampleIntervalMs, Math.ceil(span / CHART_POINTS));
  const points = Math.max(1, Math.ceil(span / bucketMs));
  const [anchors, buckets] = await Promise.all([
    samplesAt(ctx.db, ids, from),
    sampleBuckets(ctx.db, ids, from, bucketMs),
  ]);
  const byId = new Map<string, Map<number, SampleBucket>>();
  for (const b of buckets) {
    let m = byId.get(b.subscription_id);
    if (!m) {
      m = new Map();
      byId.set(b.subscription_id, m);
    }
    // A sample exactly at `to` belongs to the last bucket.
    const index = Math.min(points - 1, b.bucket);
    const prev = m.get(index);
    m.set(index, prev ? mergeBuckets(prev, b) : b);
  }
  const start = new Map(anchors.map((a) => [a.subscription_id, a]));
  const series = new Map<string, Array<ChartPoint | null>>();
  for (const id of ids) {
    const a = start.get(id);
    let carry: ChartPoint | null = a
      ? { pending: a.pending_count, dlq: a.dlq_count, paused: a.paused }
      : null;
    const data = byId.get(id);
    const out: Array<ChartPoint | null> = [];
    for (let i = 0; i < points; i++) {
      const b = data?.get(i);
      if (!b) {
        out.push(carry);
        continue;
      }
      out.push({
        pending: Math.max(carry?.pending ?? 0, b.pending_max),
        dlq: Math.max(carry?.dlq ?? 0, b.dlq_max),
        paused: (carry?.paused ?? false) || b.paused,
      });
      carry = { pending: b.pending_last, dlq: b.dlq_last, paused: b.paused_last };
    }
    series.set(id, out);
  }
  return { from, to: now, bucketMs, series };
}

/** Two buckets that clamping put in one place: peaks of both, last values of the later one. */
function mergeBuckets(a: SampleBucket, b: SampleBucket): SampleBucket {
  const later = b.bucket >= a.bucket ? b : a;
  return {
    ...later,
    pending_max: Math.max(a.pending_max, b.pending_max),
    dlq_max: Math.max(a.dlq_max, b.dlq_max),
    paused: a.paused || b.paused,
  };
}
