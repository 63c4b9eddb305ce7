import type { Logger } from "pino";
import type { Db } from "../store/db.ts";
import { refreshStatistics, STATISTICS_CHECK_MS } from "../store/statistics.ts";
import { PeriodicLoop } from "./periodic-loop.ts";

/**
 * Keeps the planner statistics of Herald's tables current, one per dispatcher process. Every two seconds
 * it calls refreshStatistics (src/store/statistics.ts): on PostgreSQL a look at which tables grew or
 * changed a lot since their last analyze, and an analyze of those (autovacuum looks once a minute, and a
 * new deployment's tables grow from empty faster than that: a claim planned without statistics can read
 * every pending row of a queue, bench/HISTORY.md fourth round); on the embedded store, which has no
 * autovacuum, an analyze of every table at most every five minutes.
 */
export class StatisticsKeeper {
  readonly name = "statistics";
  private readonly loop: PeriodicLoop;

  constructor(opts: { db: Db; log: Logger }) {
    this.loop = new PeriodicLoop({
      pass: async () => {
        await refreshStatistics(opts.db);
        return STATISTICS_CHECK_MS;
      },
      failed: (err, errors) => {
        opts.log.warn({ err }, "could not refresh planner statistics");
        return Math.min(60_000, STATISTICS_CHECK_MS * 2 ** Math.min(errors, 4));
      },
    });
  }

  async start(): Promise<void> {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }
}
