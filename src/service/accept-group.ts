import { type Db, type Queryable, retryingConflicts } from "../store/db.ts";
import type { NewEvent } from "../store/events.ts";

/** What one accept of events reports: per event, and for the whole group. */
export interface AcceptOutcome<A> {
  accepted: A[];
  queuedFor: string[];
  paused: string[];
}

/** Accepts events on `q` (the database itself: the accept is one statement, committed alone). */
type AcceptFn<A> = (q: Queryable, events: readonly NewEvent[]) => Promise<AcceptOutcome<A>>;

interface Request<A> {
  events: readonly NewEvent[];
  resolve(accepted: A[]): void;
  reject(err: unknown): void;
}

/** Most events one shared accept takes (a larger request still goes alone, whole). */
const MAX_GROUP_EVENTS = 1000;
/** Accepts of one process running at once; more requests wait and join the next one. */
const LANES = 2;

/**
 * Group commit for accepting events. Requests that arrive while the process's accepts are busy wait and
 * then go together in one accept statement (src/store/fan-out.ts): one round of subscription row locks,
 * one insert of events and deliveries and one commit for all of them, instead of one each. Nothing waits
 * on a timer: with a free lane a request starts at once, alone. Each request keeps its own outcome (event
 * ids, duplicates by idempotency key, exactly as if they had gone one after the other, in arrival order);
 * if the shared statement fails, every request of the group is tried again alone, so one request's
 * failure never fails another's.
 */
export class AcceptGroup<A> {
  private readonly waiting: Array<Request<A>> = [];
  private busy = 0;

  constructor(
    private readonly db: Db,
    private readonly accept: AcceptFn<A>,
    /** Called after each commit with what the accept queued and paused. */
    private readonly afterCommit: (queuedFor: readonly string[], paused: readonly string[]) => void,
  ) {}

  submit(events: readonly NewEvent[]): Promise<A[]> {
    return new Promise<A[]>((resolve, reject) => {
      this.waiting.push({ events, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.busy < LANES && this.waiting.length > 0) {
      const group = this.take();
      this.busy += 1;
      void this.run(group).finally(() => {
        this.busy -= 1;
        this.pump();
      });
    }
  }

  /** The next requests in arrival order, up to MAX_GROUP_EVENTS events (always at least one request). */
  private take(): Array<Request<A>> {
    let n = 0;
    let count = 0;
    while (count < this.waiting.length) {
      const size = this.waiting[count]!.events.length;
      if (count > 0 && n + size > MAX_GROUP_EVENTS) break;
      n += size;
      count += 1;
    }
    return this.waiting.splice(0, count);
  }

  private async run(group: Array<Request<A>>): Promise<void> {
    let out: AcceptOutcome<A>;
    try {
      const events = group.flatMap((r) => r.events);
      out = await retryingConflicts(() => this.accept(this.db, events));
    } catch (err) {
      if (group.length === 1) {
        group[0]!.reject(err);
        return;
      }
      for (const r of group) {
        let alone: AcceptOutcome<A>;
        try {
          alone = await retryingConflicts(() => this.accept(this.db, r.events));
        } catch (e) {
          r.reject(e);
          continue;
        }
        r.resolve(alone.accepted);
        this.committed(alone);
      }
      return;
    }
    let at = 0;
    for (const r of group) {
      r.resolve(out.accepted.slice(at, at + r.events.length));
      at += r.events.length;
    }
    this.committed(out);
  }

  /**
   * After a commit: the triggers. Outside the accept's error handling, so a failing trigger can neither
   * fail the requests nor send their committed events through the accept again.
   */
  private committed(out: AcceptOutcome<A>): void {
    try {
      this.afterCommit(out.queuedFor, out.paused);
    } catch {
      // The events are stored; the scheduler delivers them without the push trigger.
    }
  }
}
