import type { Logger } from "pino";
import type { Settings } from "../config.ts";
import {
  type Coordinator,
  drainLockKey,
  isCoordinationUnavailable,
  type LockHandle,
} from "../coordination/index.ts";
import type { Metrics } from "../metrics.ts";
import { claimDue, queueHead } from "../store/claim.ts";
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

/** A drain stops after this many rounds or this long, and leaves the rest to the scheduler. */
const MAX_ROUNDS = 10_000;
const MAX_DRAIN_MS = 60_000;

/**
 * Push drain: when events are queued, drain each affected queue at once instead of waiting for the
 * scheduler. Per queue, a lock `drain:{subscription_id}` (TTL HERALD_DRAIN_LOCK_TTL_MS, refreshed while
 * the drain runs, released in a finally) lets one drain run at a time; a trigger that finds it held does
 * nothing, because the running drain reaches the new event. A drain always starts at the head of the
 * queue, never at the new event, and sends only what it claimed itself; a head still in back-off is not
 * sent early. The lock only saves work: the claim is conditional in the database, so a drain that outlives
 * its lock can neither duplicate nor reorder.
 */
export class PushDrain {
  readonly name = "push-drain";
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  /** Drains started since the process began, and the most ever running at once on one queue. */
  drainsStarted = 0;
  maxConcurrentPerQueue = 0;
  private readonly activePerQueue = new Map<string, number>();

  constructor(private readonly opts: PushDrainOptions) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.running]);
  }

  /** Fire and forget: never throws, never delays the caller (the event's acceptance). */
  trigger(subscriptionIds: readonly string[]): void {
    if (this.stopped) return;
    for (const id of new Set(subscriptionIds)) {
      const p = this.drain(id).then(
        (outcome) => {
          this.opts.metrics.pushTrigger.inc({ outcome });
        },
        (err: unknown) => {
          this.opts.metrics.pushTrigger.inc({ outcome: "error" });
          this.opts.log.error({ err, subscription_id: id }, "push drain failed");
        },
      );
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
  }

  /**
   * Drains one queue if its lock is free; resolves with what happened. After releasing the lock it looks
   * at the head once more: a trigger that found the lock held just before the release relied on this
   * drain to reach its event, and the drain's last claim may have run before that event committed.
   */
  async drain(subscriptionId: string): Promise<TriggerOutcome> {
    let outcome: TriggerOutcome = "skipped";
    for (let pass = 0; pass < 100 && !this.stopped; pass++) {
      const o = await this.drainOnce(subscriptionId);
      if (pass === 0) outcome = o;
      if (o !== "success") break;
      const head = await queueHead(this.opts.db, subscriptionId);
      const room = Math.min(this.opts.dispatcher.capacity, this.opts.dispatcher.allowance(subscriptionId));
      if (head?.status !== "pending" || !head.due || room <= 0) break;
    }
    return outcome;
  }

  private async drainOnce(subscriptionId: string): Promise<TriggerOutcome> {
    const { coordinator, settings, log } = this.opts;
    let lock: LockHandle | null;
    try {
      lock = await coordinator.tryLock(drainLockKey(subscriptionId), settings.drainLockTtlMs);
    } catch (err) {
      // Redis down: the event is accepted all the same; the scheduler delivers it.
      if (!isCoordinationUnavailable(err)) throw err;
      log.warn(
        { subscription_id: subscriptionId },
        "push drain lock unavailable; leaving the queue to the scheduler",
      );
      return "error";
    }
    if (!lock) return "skipped";
    this.drainsStarted += 1;
    const active = (this.activePerQueue.get(subscriptionId) ?? 0) + 1;
    this.activePerQueue.set(subscriptionId, active);
    this.maxConcurrentPerQueue = Math.max(this.maxConcurrentPerQueue, active);
    const held = lock;
    const refresh = setInterval(
      () => {
        coordinator.refresh(held, settings.drainLockTtlMs).then(
          (ok) => {
            if (!ok)
              log.warn(
                { subscription_id: subscriptionId },
                "drain lock lost while draining (the claim still guards order)",
              );
          },
          () => {},
        );
      },
      Math.max(50, Math.floor(settings.drainLockTtlMs / 3)),
    );
    try {
      return await this.drainHeld(subscriptionId);
    } finally {
      const left = (this.activePerQueue.get(subscriptionId) ?? 1) - 1;
      if (left === 0) this.activePerQueue.delete(subscriptionId);
      else this.activePerQueue.set(subscriptionId, left);
      clearInterval(refresh);
      await coordinator.release(held).catch(() => false);
    }
  }

  private async drainHeld(subscriptionId: string): Promise<TriggerOutcome> {
    const { db, settings, dispatcher } = this.opts;
    const deadline = Date.now() + MAX_DRAIN_MS;
    for (let round = 0; round < MAX_ROUNDS && Date.now() < deadline && !this.stopped; round++) {
      const capacity = Math.min(dispatcher.capacity, dispatcher.allowance(subscriptionId));
      if (capacity <= 0) {
        dispatcher.wake();
        return "success";
      }
      const claim = await claimDue(db, {
        owner: dispatcher.owner,
        leaseMs: settings.leaseMs,
        limit: capacity,
        subscriptionIds: [subscriptionId],
      });
      if (claim.deliveries.length === 0) {
        if (round > 0) return "success";
        const head = await queueHead(db, subscriptionId);
        return head && head.status === "pending" && !head.due ? "backoff" : "success";
      }
      await dispatcher.sendAndRecord(claim.deliveries);
    }
    dispatcher.wake();
    return "success";
  }
}
