import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import { workerLost } from "../domain/error-kind.ts";
import { maxAttempts } from "../domain/retry-schedule.ts";
import type { Metrics } from "../metrics.ts";
import { nextDueAt } from "../store/claim.ts";
import type { Db } from "../store/db.ts";
import { settleExpiredLeases } from "../store/record.ts";
import { PeriodicLoop } from "./periodic-loop.ts";

export interface SchedulerOptions {
  db: Db;
  settings: Settings;
  log: Logger;
  metrics: Metrics;
  /** Asks the dispatcher to look for work. */
  wakeDispatcher: () => void;
  onPaused?: (subscriptionIds: readonly string[]) => void;
}

const LEASE_BATCH = 500;
/** Shortest sleep, so a burst of due retries does not spin the loop. */
const MIN_SLEEP_MS = 5;

/**
 * The safety net. It wakes at the earliest due `scheduled_at` or every HERALD_SCHEDULER_INTERVAL_MS,
 * whichever is sooner; settles expired leases (worker lost); and wakes the dispatcher so due retries
 * and anything a missed trigger left behind are sent.
 */
export class Scheduler {
  readonly name = "scheduler";
  private readonly loop = new PeriodicLoop({
    pass: () => this.tick(),
    failed: (err, errors) => {
      this.opts.log.error({ err }, "scheduler pass failed");
      return Math.min(this.opts.settings.schedulerIntervalMs, 100 * 2 ** Math.min(errors, 6));
    },
  });

  constructor(private readonly opts: SchedulerOptions) {}

  async start(): Promise<void> {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Runs one pass now (tests, and after a retry was queued with a short delay). */
  nudge(): void {
    this.loop.nudge();
  }

  /** One pass: settle expired leases, wake the dispatcher; returns how long to sleep. */
  async tick(): Promise<number> {
    const { db, settings, metrics, log } = this.opts;
    // Dispatchers cache no subscription state (every claim reads it), so the control refresh is just
    // a wake-up at least every HERALD_CONTROL_REFRESH_MS in case a resume message was lost.
    const interval = Math.min(settings.schedulerIntervalMs, settings.controlRefreshMs);
    for (let i = 0; i < 20; i++) {
      const r = await settleExpiredLeases(db, {
        maxAttempts: maxAttempts(settings.retryScheduleMs),
        detail: workerLost().detail,
        limit: LEASE_BATCH,
        // Rare and not on the hot path: settle with the WAL flushed.
        syncCommit: true,
      });
      if (r.settled > 0) {
        metrics.leasesExpired.inc(r.settled);
        log.warn({ settled: r.settled }, "expired leases settled as worker lost");
      }
      if (r.paused.length > 0) this.opts.onPaused?.(r.paused);
      if (r.settled < LEASE_BATCH) break;
    }
    this.opts.wakeDispatcher();
    const due = await nextDueAt(db);
    if (!due) return interval;
    const untilDue = due.getTime() - Date.now();
    return Math.max(MIN_SLEEP_MS, Math.min(interval, untilDue));
  }
}
