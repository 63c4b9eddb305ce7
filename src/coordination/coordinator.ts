/**
 * Coordination between Herald processes: short-lived locks (the push-drain lock per queue)
 * and control messages (pause / resume / update / delete broadcast to every dispatcher).
 *
 * Two implementations share this contract: Redis (any number of processes) and in-process
 * (one process, no Redis). The same contract suite runs against both.
 */

export interface LockHandle {
  /** The key as the caller gave it (without the coordinator's prefix). */
  readonly key: string;
  /** A random token that identifies this acquisition; only its holder may refresh or release. */
  readonly token: string;
}

/**
 * `paused`, `resumed`, `updated`, `deleted`: a subscription changed. `queued`: new work arrived in a
 * subscription's queue (published by API-only processes so a dispatcher starts a push drain).
 */
export const CONTROL_MESSAGE_TYPES = ["paused", "resumed", "updated", "deleted", "queued"] as const;
export type ControlMessageType = (typeof CONTROL_MESSAGE_TYPES)[number];

/** Most subscriptions one `queued` message names (a batch accepted for 1,000 queues is one message). */
export const MAX_QUEUED_IDS = 1000;

export type ControlMessage = {
  type: ControlMessageType;
  subscription_id: string;
  /**
   * `queued` only: every queue that got work, `subscription_id` first (a receiver that knows only
   * `subscription_id` still drains that one; the scheduler reaches the rest). At most MAX_QUEUED_IDS.
   */
  subscription_ids?: string[];
  /** ISO-8601 time of the change. */
  at: string;
  /** Who published it (e.g. a process id), so a receiver can recognise its own messages. */
  origin?: string;
};

export type ControlMessageHandler = (message: ControlMessage) => void;

export interface Coordinator {
  readonly kind: "redis" | "in-process";
  /**
   * Take the lock `key` for `ttlMs` if nobody holds it (`SET key token NX PX ttl`).
   * Resolves to the handle, or `null` when someone else holds it.
   */
  tryLock(key: string, ttlMs: number): Promise<LockHandle | null>;
  /** Extend the lock to `ttlMs` from now, only if `lock` still owns it. */
  refresh(lock: LockHandle, ttlMs: number): Promise<boolean>;
  /** Delete the lock, only if `lock` still owns it. */
  release(lock: LockHandle): Promise<boolean>;
  /** Whether anybody currently holds `key` (expired locks are free). */
  isLocked(key: string): Promise<boolean>;
  /** Of `keys`, those somebody currently holds: one round trip however many keys. */
  lockedAmong(keys: readonly string[]): Promise<Set<string>>;
  publish(channel: string, message: ControlMessage): Promise<void>;
  /**
   * Deliver every message published on `channel` (by any coordinator sharing the backend,
   * this one included) to `handler`, asynchronously, until the returned function is called.
   * The returned unsubscribe stops delivery at once and never rejects.
   */
  subscribe(channel: string, handler: ControlMessageHandler): Promise<() => Promise<void>>;
  /** False while the backend is unreachable (and after `close()`). */
  healthy(): boolean;
  close(): Promise<void>;
}

export const DEFAULT_PREFIX = "herald:";

/** The channel dispatchers listen on for subscription control messages. */
export const CONTROL_CHANNEL = "subscription-events";

/** Lock key of the push-drain of one subscription's queue: `drain:{subscription_id}`. */
export function drainLockKey(subscriptionId: string): string {
  return `drain:${subscriptionId}`;
}

export const COORDINATION_UNAVAILABLE = "COORDINATION_UNAVAILABLE";

/**
 * The coordination backend could not answer (down, unreachable, too slow, or the coordinator
 * is closed). Callers degrade: accept the event anyway and let the scheduler deliver it.
 */
export class CoordinationUnavailableError extends Error {
  readonly code = COORDINATION_UNAVAILABLE;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CoordinationUnavailableError";
  }
}

export function isCoordinationUnavailable(err: unknown): err is CoordinationUnavailableError {
  return (
    typeof err === "object" && err !== null && (err as { code?: unknown }).code === COORDINATION_UNAVAILABLE
  );
}

/** Validates a lock TTL; rejects non-finite or non-positive values, rounds fractions up. */
export function normaliseTtl(ttlMs: number): number {
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`lock ttlMs must be a positive finite number of milliseconds, got ${String(ttlMs)}`);
  }
  return Math.ceil(ttlMs);
}

export function assertKey(key: string, what = "lock key"): void {
  if (typeof key !== "string" || key.length === 0) {
    throw new TypeError(`${what} must be a non-empty string`);
  }
}

export function assertLockHandle(lock: LockHandle): void {
  if (typeof lock !== "object" || lock === null) throw new TypeError("lock handle must be an object");
  assertKey(lock.key);
  if (typeof lock.token !== "string" || lock.token.length === 0) {
    throw new TypeError("lock handle token must be a non-empty string");
  }
}

/**
 * Returns a clean copy of `value` if it is a well-formed control message, otherwise `null`.
 * Unknown fields are dropped.
 */
export function toControlMessage(value: unknown): ControlMessage | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.type !== "string" || !(CONTROL_MESSAGE_TYPES as readonly string[]).includes(v.type))
    return null;
  if (typeof v.subscription_id !== "string" || v.subscription_id.length === 0) return null;
  if (typeof v.at !== "string" || v.at.length === 0) return null;
  if (v.origin !== undefined && typeof v.origin !== "string") return null;
  const message: ControlMessage = {
    type: v.type as ControlMessageType,
    subscription_id: v.subscription_id,
    at: v.at,
  };
  if (v.subscription_ids !== undefined) {
    const ids = v.subscription_ids;
    if (
      v.type !== "queued" ||
      !Array.isArray(ids) ||
      ids.length === 0 ||
      ids.length > MAX_QUEUED_IDS ||
      ids[0] !== v.subscription_id ||
      !ids.every((id) => typeof id === "string" && id.length > 0)
    ) {
      return null;
    }
    message.subscription_ids = [...(ids as string[])];
  }
  if (v.origin !== undefined) message.origin = v.origin;
  return message;
}

/** Parses a control message from its wire form (JSON); `null` when malformed. */
export function parseControlMessage(raw: string): ControlMessage | null {
  try {
    return toControlMessage(JSON.parse(raw));
  } catch {
    return null;
  }
}

/** Validates a message about to be published; throws TypeError when malformed. */
export function checkOutgoingMessage(message: ControlMessage): ControlMessage {
  const clean = toControlMessage(message);
  if (clean === null) {
    throw new TypeError(
      `control message must be { type: paused|resumed|updated|deleted|queued, subscription_id, at, origin?, subscription_ids? (queued only: 1 to ${MAX_QUEUED_IDS}, subscription_id first) }`,
    );
  }
  return clean;
}

/** The queues a control message names: its `subscription_ids` when present, else its `subscription_id`. */
export function subscriptionsOf(message: ControlMessage): readonly string[] {
  return message.subscription_ids ?? [message.subscription_id];
}
