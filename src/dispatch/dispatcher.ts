import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import type { Sender } from "../http/sender.ts";
import type { Metrics } from "../metrics.ts";
import { type ClaimedDelivery, type ClaimOptions, type ClaimResult, claimDue } from "../store/claim.ts";
import type { Db } from "../store/db.ts";
import { type AttemptResult, recordResults } from "../store/record.ts";
import { registerLocalOwner } from "../store/sessions.ts";
import { buildRequest, type SecretOpener } from "./message.ts";
import { attemptResult } from "./outcome.ts";
import { SessionKeeper } from "./session-keeper.ts";
import { Wakeup } from "./wakeup.ts";

export interface DispatcherOptions {
  db: Db;
  settings: Settings;
  /** Opens the sealed signing secrets a claim returns (src/store/secret-box.ts). */
  secrets: SecretOpener;
  log: Logger;
  sender: Sender;
  metrics: Metrics;
  /** Called after a commit paused subscriptions (DLQ ceiling), to broadcast it. */
  onPaused?: (subscriptionIds: readonly string[]) => void;
  /** Called after a commit queued retries, with the earliest one's due time (ms since the epoch). */
  onRetryQueued?: (dueAtMs: number) => void;
  /** Queues the bulk loop must leave alone this time (held by a push drain). */
  exclude?: (subscriptionIds: readonly string[]) => Promise<ReadonlySet<string>>;
  owner?: string;
  random?: () => number;
}

const MAX_CLAIM_BATCH = 100;
/** How soon to look again when the only queues with work were held by push drains. */
const EXCLUDED_RETRY_MS = 50;
/** Consecutive claims that found nothing while more queues were left to look at, before sleeping. */
const MAX_EMPTY_SCANS = 4;

/**
 * The claim → send → record loop of one process. It claims due deliveries (the database decides what
 * may go: heads of ordered queues, up to max_in_flight of unordered ones), POSTs them with at most
 * DISPATCHER_MAX_CONCURRENT_POSTS in flight, and writes results in batches. After each batch of results
 * it looks for work again at once: the next head of an ordered queue is due the moment its
 * predecessor is recorded.
 */
export class Dispatcher {
  readonly name = "dispatcher";
  readonly owner: string;
  private readonly wakeup = new Wakeup();
  private readonly inFlight = new Map<number, Promise<void>>();
  /** POSTs in flight in this process per subscription (for the fair share). */
  private readonly perSubscription = new Map<string, number>();
  /** Ordered subscriptions with their head out from this process: nothing more to claim until it ends. */
  private readonly orderedOut = new Set<string>();
  private results: AttemptResult[] = [];
  /** Resolvers of callers waiting for a delivery's result to be recorded (push drains). */
  private readonly waiting = new Map<number, () => void>();
  private flushing: Promise<void> | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private stopping = false;
  /** Slots held by claims under way (see claim()). */
  private claiming = 0;
  /**
   * Ordered deliveries sent and not yet recorded: each keeps its slot, which the record hands to the queue's
   * next head (recordResults' chain).
   */
  private readonly awaitingRecord = new Set<number>();
  private session: SessionKeeper | null = null;
  private unregister: (() => void) | null = null;
  /** Where the next claim starts its walk over subscriptions with work (round-robin by id). */
  private cursor: string | null = null;
  /**
   * The last look found work only in queues push drains hold: recorded results (which free slots, mostly
   * of those drains' own POSTs) do not wake the loop then; the EXCLUDED_RETRY_MS timer and wake() do.
   */
  private onlyExcluded = false;

  constructor(private readonly opts: DispatcherOptions) {
    this.owner = opts.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  /**
   * Registers this dispatcher as live (src/store/sessions.ts: a session of its own on PostgreSQL, the
   * process's list on the embedded store), so its in-flight rows are taken back soon after it dies, then
   * starts claiming.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { db, log } = this.opts;
    this.unregister = registerLocalOwner(db, this.owner);
    this.session = new SessionKeeper({ db, owner: this.owner, log });
    await this.session.start();
    this.loop = this.run();
  }

  /** Look for work now (an event arrived, a subscription resumed, a retry fell due). */
  wake(): void {
    this.wakeup.wake();
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Whether claims and results wait for the WAL flush. Always on the embedded store: PGlite is one backend
   * with no WAL writer, so an unflushed commit stays in memory until the next flushed one, and a killed
   * process would send again everything recorded since (a flush there costs no measurable time). On
   * PostgreSQL, HERALD_DISPATCH_SYNC_COMMIT (docs/delivery.md, "Durability of claims and results").
   */
  private get syncCommit(): boolean {
    return this.opts.settings.dispatchSyncCommit || this.opts.db.kind === "embedded";
  }

  /** POSTs this process may still start now (slots held by claims under way count as taken). */
  get capacity(): number {
    if (!this.running) return 0;
    return (
      this.opts.settings.maxConcurrentPosts - this.inFlight.size - this.claiming - this.awaitingRecord.size
    );
  }

  /** An eighth of the POST slots (at least one), kept for queues with no POST out in this process. */
  private get reserve(): number {
    return Math.max(1, Math.floor(this.opts.settings.maxConcurrentPosts / 8));
  }

  /** The most POST slots one subscription may hold in this process: all but the reserve. */
  get fairShare(): number {
    return Math.max(1, this.opts.settings.maxConcurrentPosts - this.reserve);
  }

  /**
   * The fair share of a claim (both the loop's and a push drain's): queues with POSTs out in this process
   * together never take the reserve, which only a queue's first POST may use. However many endpoints hang
   * (each holding slots until its request timeout), a queue with nothing out finds a free slot.
   */
  private fairClaim(limit: number): Pick<ClaimOptions, "allowance" | "fresh" | "sharedLimit"> {
    return {
      allowance: (id) => this.allowance(id),
      fresh: (id) => !this.perSubscription.has(id),
      sharedLimit: Math.max(0, Math.min(limit, this.capacity - this.reserve)),
    };
  }

  /**
   * Claims up to `opts.limit` due deliveries within the process's free slots and fair share, and starts
   * sending them. The slots are held from before the claim until its rows are in flight, so concurrent
   * claims (the loop's and push drains') never take more than there is. With `track`, `recorded` has one
   * promise per claimed row, resolved once its result is recorded.
   */
  async claim(
    opts: Pick<ClaimOptions, "limit" | "subscriptionIds" | "after" | "exclude">,
    track = false,
  ): Promise<ClaimResult & { recorded: Array<Promise<void>> }> {
    const { settings, db } = this.opts;
    const limit = Math.min(opts.limit, this.capacity);
    if (limit <= 0) {
      return { deliveries: [], examined: 0, exhausted: false, cursor: null, excluded: 0, recorded: [] };
    }
    const fair = this.fairClaim(limit);
    this.claiming += limit;
    let claim: ClaimResult;
    try {
      claim = await claimDue(db, {
        ...opts,
        ...fair,
        limit,
        owner: this.owner,
        leaseMs: settings.leaseMs,
        syncCommit: this.syncCommit,
      });
    } finally {
      this.claiming -= limit;
    }
    const recorded: Array<Promise<void>> = [];
    for (const d of claim.deliveries) {
      if (track) recorded.push(new Promise<void>((resolve) => this.waiting.set(d.delivery_id, resolve)));
      this.launch(d);
    }
    return { ...claim, recorded };
  }

  /**
   * How many more POSTs `subscriptionId` may start in this process now. A queue with POSTs out is
   * refilled only once a quarter of its share is free: claiming and recording in batches of a few rows
   * instead of one or two at a time is what keeps the database's cost per delivery low (bench/HISTORY.md).
   */
  allowance(subscriptionId: string): number {
    if (this.orderedOut.has(subscriptionId)) return 0;
    const out = this.perSubscription.get(subscriptionId) ?? 0;
    const free = Math.max(0, this.fairShare - out);
    return out === 0 || free >= this.refillAt ? free : 0;
  }

  /** Free slots (of one queue's share) before a queue with POSTs out is claimed from again. */
  private get refillAt(): number {
    return Math.max(1, Math.floor(this.fairShare / 4));
  }

  /**
   * Stops claiming, lets in-flight POSTs finish (each is bounded by the request timeout), records their
   * results, then returns. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.running = false;
    this.wakeup.wake();
    await this.loop;
    // Rows chained by a record that began before the stop are sent too; nothing is chained after it.
    for (let i = 0; i < 10 && (this.inFlight.size > 0 || this.results.length > 0); i++) {
      await Promise.allSettled([...this.inFlight.values()]);
      await (this.flushing ?? this.flush());
    }
    await this.session?.stop();
    this.unregister?.();
  }

  private async run(): Promise<void> {
    const { settings, log } = this.opts;
    let emptyScans = 0;
    let errors = 0;
    while (this.running) {
      const capacity = this.capacity;
      if (capacity <= 0) {
        await this.wakeup.wait(settings.schedulerIntervalMs);
        continue;
      }
      this.onlyExcluded = false;
      try {
        // Rows claimed while stop() began are still sent (the lease is ours); stop() waits for them.
        const claim = await this.claim({
          limit: Math.min(capacity, MAX_CLAIM_BATCH),
          after: this.cursor,
          ...(this.opts.exclude ? { exclude: this.opts.exclude } : {}),
        });
        errors = 0;
        if (claim.cursor !== null) this.cursor = claim.cursor;
        if (claim.deliveries.length > 0) {
          emptyScans = 0;
          continue;
        }
        if (!claim.exhausted && emptyScans < MAX_EMPTY_SCANS) {
          emptyScans += 1;
          continue;
        }
        emptyScans = 0;
        // Queues left out because a push drain held them have work: the drain may end (and release
        // them) without anything waking this loop, so look again soon instead of after a scheduler interval.
        this.onlyExcluded = claim.excluded > 0;
        await this.wakeup.wait(claim.excluded > 0 ? EXCLUDED_RETRY_MS : settings.schedulerIntervalMs);
      } catch (err) {
        errors += 1;
        const backoff = Math.min(5000, 100 * 2 ** Math.min(errors, 6));
        log.error({ err, backoff_ms: backoff }, "claim failed");
        await this.wakeup.wait(backoff);
      }
    }
  }

  private launch(d: ClaimedDelivery): void {
    const { sender, metrics, settings } = this.opts;
    metrics.claims.inc();
    metrics.inFlight.inc();
    this.perSubscription.set(d.subscription_id, (this.perSubscription.get(d.subscription_id) ?? 0) + 1);
    if (d.ordering === "ordered") this.orderedOut.add(d.subscription_id);
    const task = (async () => {
      try {
        const sent = await sender.send(buildRequest(d, this.opts.secrets));
        metrics.attemptLatency.observe(sent.latencyMs / 1000);
        const result = attemptResult(
          d.delivery_id,
          d.attempt_number,
          sent,
          settings.retryScheduleMs,
          this.opts.random,
        );
        metrics.deliveries.inc({ outcome: result.status, error_kind: result.error_kind ?? "" });
        this.results.push(result);
        if (d.ordering === "ordered") this.awaitingRecord.add(d.delivery_id);
      } catch (err) {
        // send() never throws; anything here is a bug in building the request. The lease will expire.
        this.opts.log.error({ err, delivery_id: d.delivery_id }, "could not send delivery");
        this.settle([d.delivery_id]);
      } finally {
        metrics.inFlight.dec();
        this.inFlight.delete(d.delivery_id);
        const left = (this.perSubscription.get(d.subscription_id) ?? 1) - 1;
        if (left > 0) this.perSubscription.set(d.subscription_id, left);
        else {
          this.perSubscription.delete(d.subscription_id);
          this.orderedOut.delete(d.subscription_id);
        }
        this.scheduleFlush();
      }
    })();
    this.inFlight.set(d.delivery_id, task);
  }

  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
  }

  /** Writes buffered results in one transaction; on a database error keeps them and tries again. */
  private async flush(): Promise<void> {
    const { log, metrics } = this.opts;
    for (let attempt = 0; this.results.length > 0; attempt++) {
      const batch = this.results;
      this.results = [];
      try {
        const summary = await recordResults(this.opts.db, this.owner, batch, {
          syncCommit: this.syncCommit,
          // An ordered queue's next head is claimed by the statement that records its predecessor.
          chainLeaseMs: this.running ? this.opts.settings.leaseMs : null,
        });
        for (const r of batch) this.awaitingRecord.delete(r.delivery_id);
        if (summary.chained.length > 0) metrics.chained.inc(summary.chained.length);
        for (const d of summary.chained) this.launch(d);
        if (summary.stale > 0) {
          metrics.staleResults.inc(summary.stale);
          log.warn({ stale: summary.stale }, "results arrived after their lease was taken back; ignored");
        }
        if (summary.paused.length > 0) this.opts.onPaused?.(summary.paused);
        const retryIn = Math.min(...batch.map((r) => r.retry_delay_ms ?? Number.POSITIVE_INFINITY));
        if (retryIn !== Number.POSITIVE_INFINITY) this.opts.onRetryQueued?.(Date.now() + retryIn);
        this.settle(batch.map((r) => r.delivery_id));
        attempt = 0;
        // Slots are free and ordered queues may have a new head: look for work now, not only once the
        // buffer is empty (under a steady stream of results it seldom is).
        this.slotsFreed();
      } catch (err) {
        this.results = batch.concat(this.results);
        if (this.stopping && attempt >= 3) {
          log.error(
            { err, lost_results: this.results.length },
            "could not record results while stopping; leases will expire",
          );
          this.results = [];
          this.awaitingRecord.clear();
          break;
        }
        const backoff = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
        log.error({ err, backoff_ms: backoff }, "recording results failed; retrying");
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    this.flushing = null;
    this.slotsFreed();
  }

  /** Results recorded: look for work, unless the only work was in queues push drains are serving. */
  private slotsFreed(): void {
    if (!this.onlyExcluded) this.wakeup.wake();
  }

  private settle(ids: readonly number[]): void {
    for (const id of ids) {
      const resolve = this.waiting.get(id);
      if (resolve) {
        this.waiting.delete(id);
        resolve();
      }
    }
  }
}
