import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import { workerLost } from "../domain/error-kind.ts";
import { maxAttempts } from "../domain/retry-schedule.ts";
import type { Metrics } from "../metrics.ts";
import { nextDueAt } from "../store/claim.ts";
import type { Db } from "../store/db.ts";
import { settleLostAttempts } from "../store/record.ts";
import { localOwners } from "../store/sessions.ts";
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

const LOST_BATCH = 500;
/** Shortest sleep, so a burst of due retries does not spin the loop. */
const MIN_SLEEP_MS = 5;
/**
 * How often, on PostgreSQL, to look for in-flight rows of dispatchers that died (src/store/sessions.ts):
 * a dead process's rows are sent again within about this long.
 */
export const LOST_CHECK_MS = 2000;

/**
 * The safety net and the clock. Each pass settles the in-flight rows of dispatchers that are gone (their
 * session ended, or their lease expired; on the embedded store, any owner not running in this process),
 * then wakes the dispatcher when something was settled, a retry fell due, or the safety
 * interval (HERALD_SCHEDULER_INTERVAL_MS, at most HERALD_CONTROL_REFRESH_MS) has passed. It sleeps until
 * the earliest of: the next due retry it knows of (from the database, or told by `dueAt` when a dispatcher
 * of this process queues one), the next safety pass, and on PostgreSQL the next check for lost dispatchers.
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
  /** When the dispatcher is woken next regardless (ms since the epoch). */
  private safetyAt = 0;
  /** The earliest retry due that this scheduler knows of (ms since the epoch). */
  private dueAtMs = Number.POSITIVE_INFINITY;
  private nudged = false;

  constructor(private readonly opts: SchedulerOptions) {}

  async start(): Promise<void> {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Runs one pass now, which wakes the dispatcher (a subscription resumed: its head may be due). */
  nudge(): void {
    this.nudged = true;
    this.loop.nudge();
  }

  /** A retry was queued, due at `atMs` (ms since the epoch): wake the dispatcher then, not at the next pass. */
  dueAt(atMs: number): void {
    if (atMs < this.dueAtMs) this.dueAtMs = atMs;
    this.loop.wakeAt(atMs);
  }

  /** One pass: settle lost attempts, wake the dispatcher when there is reason to; returns how long to sleep. */
  async tick(): Promise<number> {
    const { db, settings, metrics, log } = this.opts;
    const liveOwners = localOwners(db);
    let settled = 0;
    for (let i = 0; i < 20; i++) {
      const r = await settleLostAttempts(db, {
        maxAttempts: maxAttempts(settings.retryScheduleMs),
        detail: workerLost().detail,
        limit: LOST_BATCH,
        // Rare and not on the hot path: settle with the WAL flushed.
        syncCommit: true,
        liveOwners,
      });
      settled += r.settled;
      if (r.paused.length > 0) this.opts.onPaused?.(r.paused);
      if (r.settled < LOST_BATCH) break;
    }
    if (settled > 0) {
      metrics.leasesExpired.inc(settled);
      log.warn({ settled }, "in-flight attempts of a lost dispatcher settled as worker lost");
    }
    const now = Date.now();
    // Dispatchers cache no subscription state (every claim reads it), so the control refresh is just a
    // wake-up at least every HERALD_CONTROL_REFRESH_MS in case a resume message was lost.
    const interval = Math.min(settings.schedulerIntervalMs, settings.controlRefreshMs);
    const safety = now >= this.safetyAt;
    if (safety) this.safetyAt = now + interval;
    if (settled > 0 || safety || this.nudged || now >= this.dueAtMs) this.opts.wakeDispatcher();
    this.nudged = false;
    const due = await nextDueAt(db);
    this.dueAtMs = due ? due.getTime() : Number.POSITIVE_INFINITY;
    let wakeAt = Math.min(this.safetyAt, this.dueAtMs);
    if (db.kind === "postgres") wakeAt = Math.min(wakeAt, now + LOST_CHECK_MS);
    return Math.max(MIN_SLEEP_MS, wakeAt - Date.now());
  }
}
