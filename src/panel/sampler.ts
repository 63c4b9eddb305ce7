import type { Logger } from "pino";
import { Wakeup } from "../dispatch/wakeup.ts";
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
  private readonly wakeup = new Wakeup();
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: SamplerOptions) {}

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeup.wake();
    await this.loop;
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

  private async run(): Promise<void> {
    let errors = 0;
    while (this.running) {
      let sleep = this.opts.intervalMs;
      try {
        await this.tick();
        errors = 0;
      } catch (err) {
        errors += 1;
        sleep = Math.min(sleep, 1000 * 2 ** Math.min(errors, 5));
        this.opts.log.warn({ err }, "sampling failed; the panel's charts miss this tick");
      }
      // Wake at the start of the next tick, so samples land on the binned times.
      // (a little after it: another process's clock or the store's may run slightly behind ours).
      const { intervalMs } = this.opts;
      const untilNext = intervalMs - (Date.now() % intervalMs) + Math.min(250, intervalMs / 10);
      await this.wakeup.wait(errors > 0 ? sleep : untilNext);
    }
  }
}
