import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import type { ServiceHooks } from "../service/context.ts";
import { type ChunkControl, claimNextJob, type RunnerContext, runChunk } from "../service/retrigger.ts";
import type { Db } from "../store/db.ts";
import { nextJobDueAt } from "../store/retrigger.ts";
import { Wakeup } from "./wakeup.ts";

export interface RetriggerRunnerOptions {
  db: Db;
  settings: Settings;
  log: Logger;
  /** Push drains for the queued deliveries, pause broadcasts. */
  hooks: ServiceHooks;
  owner?: string;
  /** Longest sleep between looks for a job (default 1 s); wake() cuts it short. */
  pollMs?: number;
  /** How long a chunk owner holds a job without renewing (default HERALD_LEASE_MS); every group of items renews it. */
  leaseMs?: number;
  /** Called before each item, as its group is formed (tests stop a runner before an item's group with it). */
  beforeItem?: ChunkControl["beforeItem"];
  /** Back-off before a failed chunk is tried again (default 1 s doubling to 60 s). */
  retryDelayMs?: RunnerContext["retryDelayMs"];
}

const DEFAULT_POLL_MS = 1000;
/** Shortest sleep after a look that found nothing, so a job held elsewhere does not spin the loop. */
const MIN_IDLE_MS = 50;

function newOwner(): string {
  return `${os.hostname()}:${process.pid}:rt-${randomUUID().slice(0, 8)}`;
}

/**
 * Runs re-trigger jobs in the dispatcher role. It takes one due job with a lease (one chunk owner at a
 * time, across all dispatchers), runs one chunk of it (service `runChunk`: up to batch_size items within
 * the chunk's time budget, in groups of up to 50 items per transaction, each renewing the lease), then
 * releases the job until its next chunk is due (delay_ms later) and looks again. A job whose owner died is
 * taken up by any runner once the lease expires. stop() finishes the current group and releases the job.
 */
export class RetriggerRunner {
  readonly name = "retrigger-runner";
  owner: string;
  private readonly wakeup = new Wakeup();
  private running = false;
  private stopping = false;
  private killed = false;
  private loop: Promise<void> | null = null;
  /** Chunks this runner finished (any result), for tests and logs. */
  chunks = 0;

  constructor(private readonly opts: RetriggerRunnerOptions) {
    this.owner = opts.owner ?? newOwner();
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.killed && this.opts.owner === undefined) this.owner = newOwner();
    this.running = true;
    this.stopping = false;
    this.killed = false;
    this.loop = this.run();
  }

  /** Look for a job now (one was created or resumed in this process). */
  wake(): void {
    this.wakeup.wake();
  }

  /** Finishes the current group of items, releases the job for the next runner, and returns. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.running = false;
    this.wakeup.wake();
    await this.loop;
  }

  /**
   * Test seam for a crash: stops without releasing anything. The group of items in progress (if any)
   * commits or not as a whole; the job keeps this runner's lease until it expires (or an operator resumes it).
   */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.killed = true;
    this.running = false;
    this.wakeup.wake();
    await this.loop;
  }

  private context(): RunnerContext {
    const { db, log, hooks, settings } = this.opts;
    return {
      db,
      log,
      hooks,
      owner: this.owner,
      leaseMs: this.opts.leaseMs ?? settings.leaseMs,
      retryDelayMs: this.opts.retryDelayMs,
    };
  }

  private async run(): Promise<void> {
    const { log } = this.opts;
    const control: ChunkControl = {
      stopping: () => this.stopping,
      killed: () => this.killed,
      beforeItem: this.opts.beforeItem,
    };
    let errors = 0;
    while (this.running) {
      try {
        const rc = this.context();
        const claimed = await claimNextJob(rc);
        errors = 0;
        if (!claimed) {
          await this.idle();
          continue;
        }
        if (claimed.recovered_from) {
          log.warn(
            { job_id: claimed.job.job_id, previous_owner: claimed.recovered_from },
            "re-trigger job taken over after its owner's lease expired",
          );
        }
        const result = await runChunk(rc, claimed.job, control);
        this.chunks += 1;
        log.debug({ job_id: claimed.job.job_id, result }, "re-trigger chunk done");
        if (result === "abandoned") return;
        if (result === "error") await this.wakeup.wait(MIN_IDLE_MS);
      } catch (err) {
        if (this.killed) return;
        errors += 1;
        const backoff = Math.min(5000, 100 * 2 ** Math.min(errors, 6));
        log.error({ err, backoff_ms: backoff }, "re-trigger runner: looking for a job failed");
        await this.wakeup.wait(backoff);
      }
    }
  }

  /** Sleeps until the next job falls due, at most the poll interval; wake() and stop() cut it short. */
  private async idle(): Promise<void> {
    const poll = this.opts.pollMs ?? DEFAULT_POLL_MS;
    const due = await nextJobDueAt(this.opts.db);
    const until = due ? due.getTime() - Date.now() : poll;
    await this.wakeup.wait(Math.max(MIN_IDLE_MS, Math.min(poll, until)));
  }
}
