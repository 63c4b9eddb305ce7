import type { Logger } from "pino";
import { PeriodicLoop } from "../dispatch/periodic-loop.ts";
import type { Db } from "../store/db.ts";
import { pruneSamples, recordSamples } from "../store/samples.ts";

/** How long samples are kept: the charts show 24 h; the rest is slack for a chart's starting value. */
export const SAMPLE_RETENTION_MS = 48 * 3600 * 1000;
/** A subscription whose numbers do not move is still sampled this often (one row an hour). */
export const SAMPLE_REFRESH_MS = 3600 * 1000;
const PRUNE_BATCH = 5000;
const PRUNE_BATCHES_PER_TICK = 20;

export interface SamplerOptions {
  db: Db;
  intervalMs: number;
  log: Logger;
}

/**
 * Records each subscription's pending and DLQ counts every HERALD_SAMPLE_INTERVAL_MS for the panel's
 * charts, and prunes samples older than {@link SAMPLE_RETENTION_MS}. Runs in every dispatcher process;
 * samples are binned to the interval, so several samplers write each tick once.
 */
export class Sampler {
  readonly name = "sampler";
  private readonly loop = new PeriodicLoop({
    pass: async () => {
      await this.tick();
      // Wake at the start of the next tick, so samples land on the binned times
      // (a little after it: another process's clock or the store's may run slightly behind ours).
      const { intervalMs } = this.opts;
      return intervalMs - (Date.now() % intervalMs) + Math.min(250, intervalMs / 10);
    },
    failed: (err, errors) => {
      this.opts.log.warn({ err }, "sampling failed; the panel's charts miss this tick");
      return Math.min(this.opts.intervalMs, 1000 * 2 ** Math.min(errors, 5));
    },
  });

  constructor(private readonly opts: SamplerOptions) {}

  async start(): Promise<void> {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** One pass: write the samples that changed, prune the old ones. */
  async tick(): Promise<{ written: number; pruned: number }> {
    const { db, intervalMs } = this.opts;
    const written = await recordSamples(db, {
      intervalMs,
      refreshMs: Math.max(SAMPLE_REFRESH_MS, intervalMs),
    });
    let pruned = 0;
    for (let i = 0; i < PRUNE_BATCHES_PER_TICK; i++) {
      const n = await pruneSamples(db, { retentionMs: SAMPLE_RETENTION_MS, limit: PRUNE_BATCH });
      pruned += n;
      if (n < PRUNE_BATCH) break;
    }
    return { written, pruned };
  }
}
