import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import {
  type Coordinator,
  drainLockKey,
  isCoordinationUnavailable,
  type LockHandle,
} from "../coordination/index.ts";
import type { Metrics } from "../metrics.ts";
import { queuesInBackoff, queuesReady } from "../store/claim.ts";
import type { Db } from "../store/db.ts";
import type { Dispatcher } from "./dispatcher.ts";

export type TriggerOutcome = "success" | "skipped" | "backoff" | "error";

export interface PushDrainOptions {
  db: Db;
  settings: Settings;
  log: Logger;
  metrics: Metrics;
  coordinator: Coordinator;
  dispatcher: Dispatcher;
}

/** A pass stops after this many rounds or this long, and leaves the rest to the scheduler. */
const MAX_ROUNDS = 100_000;
const MAX_DRAIN_MS = 60_000;
/** Drain passes running at once in one process, each over its own queues. */
const MAX_PASSES = 4;
/**
 * Most queues one pass takes on: 1,000 queues triggered at once (one `queued` message) go to four passes
 * that claim side by side, not one whose claims wait for each other (ordered run: 3,800–4,300/s with one
 * pass of 1,000, 4,400–4,600/s with four of 250; bench/HISTORY.md).
 */
const MAX_QUEUES_PER_PASS = 250;
/** Re-checks after a release that found a queue ready although the pass could take nothing from it. */
const MAX_IDLE_RECHECKS = 2;

/**
 * Push drain: when events are queued, drain the affected queues at once instead of waiting for the
 * scheduler. Triggers are coalesced: a pass takes every queue triggered so far (that no pass of this
 * process holds), locks each with `drain:{subscription_id}` (Redis `SET NX PX`, TTL
 * HERALD_DRAIN_LOCK_TTL_MS, refreshed while the pass runs, released in a finally), and claims across
 * the queues it locked in one statement per round — so an accept that touches 1,000 queues costs a few
 * claims per pass, not 1,000. A queue whose lock another process holds is skipped: that drain reaches the event. A
 * pass always takes from the head of each queue, never the new event, and sends only what it claimed; a
 * head in back-off is not sent early. The lock only saves work: the claim is conditional in the
 * database, so a drain that outlives its lock can neither duplicate nor reorder.
 *
 * A trigger for a queue a pass of this process holds waits and is taken by the next pass. After its
 * release a pass looks once more at its queues: a trigger in another process that found the lock held
 * just before the release relied on this pass, whose last claim may have run before that event committed.
 */
export class PushDrain {
  readonly name = "push-drain";
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  /** Queues triggered and not yet taken by a pass. */
  private readonly triggered = new Set<string>();
  /** Queues a pass of this process is working on. */
  private readonly active = new Set<string>();
  private passes = 0;
  private pumpScheduled = false;
  private readonly idleRechecks = new Map<string, number>();
  /** Queue drains started since the process began, and the most ever running at once on one queue. */
  drainsStarted = 0;
  maxConcurrentPerQueue = 0;
  private readonly activePerQueue = new Map<string, number>();

  constructor(private readonly opts: PushDrainOptions) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopped = true;
    this.triggered.clear();
    for (let i = 0; i < 100 && this.running.size > 0; i++) await Promise.allSettled([...this.running]);
  }

  /** Fire and forget: never throws, never delays the caller (the event's acceptance). */
  trigger(subscriptionIds: readonly string[]): void {
    if (this.stopped) return;
    for (const id of subscriptionIds) this.triggered.add(id);
    // Triggers of one tick (a fan-out's control messages arrive in one socket read) go into one pass.
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.stopped && this.passes < MAX_PASSES) {
      const ids: string[] = [];
      for (const id of this.triggered) {
        if (this.active.has(id)) continue;
        ids.push(id);
        if (ids.length >= MAX_QUEUES_PER_PASS) break;
      }
      if (ids.length === 0) return;
      for (const id of ids) {
        this.triggered.delete(id);
        this.active.add(id);
      }
      this.passes += 1;
      const p = this.pass(ids)
        .catch((err: unknown) => {
          this.opts.metrics.pushTrigger.inc({ outcome: "error" }, ids.length);
          this.opts.log.error({ err, queues: ids.length }, "push drain failed");
        })
        .finally(() => {
          for (const id of ids) this.active.delete(id);
          this.passes -= 1;
          this.running.delete(p);
          this.pump();
        });
      this.running.add(p);
    }
  }

  /** One pass over `ids`: lock what is free, drain it, release, look once more. */
  private async pass(ids: readonly string[]): Promise<void> {
    const { coordinator, settings, log, metrics } = this.opts;
    const attempts = await Promise.all(
      ids.map((id) =>
        coordinator.tryLock(drainLockKey(id), settings.drainLockTtlMs).then(
          (lock) => ({ id, lock, error: false }),
          (err: unknown) => {
            if (!isCoordinationUnavailable(err)) throw err;
            return { id, lock: null, error: true };
          },
        ),
      ),
    );
    const failed = attempts.filter((a) => a.error).length;
    if (failed > 0) {
      // Redis down: the events are accepted all the same; the scheduler delivers them.
      metrics.pushTrigger.inc({ outcome: "error" }, failed);
      log.warn({ queues: failed }, "push drain lock unavailable; leaving the queues to the scheduler");
    }
    const skipped = attempts.filter((a) => !a.error && a.lock === null).length;
    if (skipped > 0) metrics.pushTrigger.inc({ outcome: "skipped" }, skipped);
    const held = attempts.filter((a): a is { id: string; lock: LockHandle; error: false } => a.lock !== null);
    if (held.length === 0) return;
    const heldIds = held.map((h) => h.id);
    this.drainsStarted += held.length;
    for (const id of heldIds) {
      const n = (this.activePerQueue.get(id) ?? 0) + 1;
      this.activePerQueue.set(id, n);
      this.maxConcurrentPerQueue = Math.max(this.maxConcurrentPerQueue, n);
    }
    const refresh = setInterval(
      () => {
        for (const h of held) {
          coordinator.refresh(h.lock, settings.drainLockTtlMs).then(
            (ok) => {
              if (!ok)
                log.warn(
                  { subscription_id: h.id },
                  "drain lock lost while draining (the claim still guards order)",
                );
            },
            () => {},
          );
        }
      },
      Math.max(50, Math.floor(settings.drainLockTtlMs / 3)),
    );
    const claimedFrom = new Set<string>();
    try {
      await this.drainHeld(heldIds, claimedFrom);
    } finally {
      clearInterval(refresh);
      for (const id of heldIds) {
        const left = (this.activePerQueue.get(id) ?? 1) - 1;
        if (left === 0) this.activePerQueue.delete(id);
        else this.activePerQueue.set(id, left);
      }
      await Promise.all(held.map((h) => coordinator.release(h.lock).catch(() => false)));
    }
    const idle = heldIds.filter((id) => !claimedFrom.has(id));
    const backoff = await queuesInBackoff(this.opts.db, idle);
    if (backoff.length > 0) metrics.pushTrigger.inc({ outcome: "backoff" }, backoff.length);
    metrics.pushTrigger.inc({ outcome: "success" }, heldIds.length - backoff.length);
    await this.recheck(heldIds, claimedFrom);
  }

  /**
   * Claims across the held queues until none has anything to take and none of this pass's POSTs is
   * still out. Each round offers a window of queues, round-robin, as many as the process has free slots
   * (each queue within its fair share; an ordered queue with its head out is not offered), and claims
   * from them in one statement: a claim's cost follows what it can take, not how many queues the pass
   * holds. A queue that gave nothing is left out until one of its POSTs is recorded (an ordered queue's
   * next head is due only then). When no queue is left to offer, the round waits for a recorded POST.
   */
  private async drainHeld(ids: readonly string[], claimedFrom: Set<string>): Promise<void> {
    const { dispatcher } = this.opts;
    const deadline = Date.now() + MAX_DRAIN_MS;
    const outstanding = new Set<Promise<void>>();
    /** Queues that gave nothing when last offered, and have had no POST recorded since. */
    const dry = new Set<string>();
    let next = 0;
    try {
      for (let round = 0; round < MAX_ROUNDS && Date.now() < deadline && !this.stopped; round++) {
        const room = dispatcher.capacity;
        const window: string[] = [];
        for (let walked = 0; room > 0 && walked < ids.length && window.length < room; walked++) {
          const at = (next + walked) % ids.length;
          const id = ids[at]!;
          if (dry.has(id) || dispatcher.allowance(id) <= 0) continue;
          window.push(id);
          next = (at + 1) % ids.length;
        }
        let claimed = 0;
        if (window.length > 0) {
          const claim = await dispatcher.claim({ limit: room, subscriptionIds: window }, true);
          claimed = claim.deliveries.length;
          const gave = new Set<string>();
          for (const [i, d] of claim.deliveries.entries()) {
            gave.add(d.subscription_id);
            claimedFrom.add(d.subscription_id);
            const sent: Promise<void> = claim.recorded[i]!.finally(() => {
              outstanding.delete(sent);
              dry.delete(d.subscription_id);
            });
            outstanding.add(sent);
          }
          for (const id of window) if (!gave.has(id)) dry.add(id);
          // Something taken and slots left, or nothing taken from this window: offer the next one (each
          // empty window makes its queues dry, so this ends).
          if (claimed === 0 || dispatcher.capacity > 0) continue;
        }
        if (outstanding.size === 0) {
          // Nothing out and nothing to offer: done, or the process is full and its main loop will come.
          if (room <= 0) dispatcher.wake();
          return;
        }
        await Promise.race(outstanding);
      }
      dispatcher.wake();
    } finally {
      await Promise.allSettled([...outstanding]);
    }
  }

  /** After the release: queues with work a claim could take now go round again (bounded when idle). */
  private async recheck(ids: readonly string[], claimedFrom: ReadonlySet<string>): Promise<void> {
    if (this.stopped) return;
    if (this.opts.dispatcher.capacity <= 0) {
      this.opts.dispatcher.wake();
      return;
    }
    const ready = await queuesReady(this.opts.db, ids);
    let again = false;
    for (const id of ready) {
      if (claimedFrom.has(id)) {
        this.idleRechecks.delete(id);
      } else {
        const n = this.idleRechecks.get(id) ?? 0;
        if (n >= MAX_IDLE_RECHECKS) {
          this.idleRechecks.delete(id);
          this.opts.dispatcher.wake();
          continue;
        }
        this.idleRechecks.set(id, n + 1);
      }
      this.triggered.add(id);
      again = true;
    }
    const readySet = new Set(ready);
    for (const id of ids) if (!readySet.has(id)) this.idleRechecks.delete(id);
    if (again) this.pump();
  }
}
