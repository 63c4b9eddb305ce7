import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import {
  assertKey,
  assertLockHandle,
  type ControlMessage,
  type ControlMessageHandler,
  CoordinationUnavailableError,
  type Coordinator,
  checkOutgoingMessage,
  DEFAULT_PREFIX,
  type LockHandle,
  normaliseTtl,
} from "./coordinator.ts";
import { type Logger, silentLogger } from "./logger.ts";

interface LockEntry {
  token: string;
  expiresAt: number;
}

/** Locks are swept of expired entries once the map grows past this size. */
const SWEEP_THRESHOLD = 1024;

/**
 * The shared state of in-process coordinators: the lock table, the message bus and the clock.
 * One process normally has one coordinator; tests create several coordinators on one hub to
 * stand in for several processes sharing one Redis.
 */
export class InProcessHub {
  readonly now: () => number;
  readonly #locks = new Map<string, LockEntry>();
  readonly #bus = new EventEmitter();

  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
    this.#bus.setMaxListeners(0);
  }

  /** Milliseconds left on a (fully prefixed) key, or -2 when it is absent or expired (like PTTL). */
  pttl(fullKey: string): number {
    const entry = this.#live(fullKey);
    return entry ? entry.expiresAt - this.now() : -2;
  }

  /** @internal */
  lock(fullKey: string, token: string, ttlMs: number): boolean {
    if (this.#live(fullKey)) return false;
    if (this.#locks.size >= SWEEP_THRESHOLD) this.#sweep();
    this.#locks.set(fullKey, { token, expiresAt: this.now() + ttlMs });
    return true;
  }

  /** @internal */
  refresh(fullKey: string, token: string, ttlMs: number): boolean {
    const entry = this.#live(fullKey);
    if (!entry || entry.token !== token) return false;
    entry.expiresAt = this.now() + ttlMs;
    return true;
  }

  /** @internal */
  release(fullKey: string, token: string): boolean {
    const entry = this.#live(fullKey);
    if (!entry || entry.token !== token) return false;
    this.#locks.delete(fullKey);
    return true;
  }

  /** @internal */
  isLocked(fullKey: string): boolean {
    return this.#live(fullKey) !== undefined;
  }

  /** @internal */
  on(fullChannel: string, listener: (message: ControlMessage) => void): void {
    this.#bus.on(fullChannel, listener);
  }

  /** @internal */
  off(fullChannel: string, listener: (message: ControlMessage) => void): void {
    this.#bus.off(fullChannel, listener);
  }

  /** @internal */
  emit(fullChannel: string, message: ControlMessage): void {
    this.#bus.emit(fullChannel, message);
  }

  #live(fullKey: string): LockEntry | undefined {
    const entry = this.#locks.get(fullKey);
    if (!entry) return undefined;
    if (this.now() >= entry.expiresAt) {
      this.#locks.delete(fullKey);
      return undefined;
    }
    return entry;
  }

  #sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.#locks) {
      if (now >= entry.expiresAt) this.#locks.delete(key);
    }
  }
}

export interface InProcessCoordinatorOptions {
  /** Namespace for keys and channels; default `herald:`. */
  prefix?: string;
  /** Clock for lock expiry (ms since epoch); default `Date.now`. Not allowed together with `hub`. */
  now?: () => number;
  /** Share locks and messages with other in-process coordinators (tests); default a private hub. */
  hub?: InProcessHub;
  logger?: Logger;
}

/** Locks and control messages for a single process, with the same semantics as the Redis version. */
export function createInProcessCoordinator(options: InProcessCoordinatorOptions = {}): Coordinator {
  if (options.hub && options.now) {
    throw new TypeError("pass either `hub` or `now` to createInProcessCoordinator, not both");
  }
  const hub = options.hub ?? new InProcessHub(options.now ? { now: options.now } : {});
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const logger = options.logger ?? silentLogger;
  let closed = false;
  const listeners = new Set<{ channel: string; listener: (message: ControlMessage) => void }>();

  const assertOpen = (): void => {
    if (closed) throw new CoordinationUnavailableError("coordinator is closed");
  };

  return {
    kind: "in-process",

    async tryLock(key: string, ttlMs: number): Promise<LockHandle | null> {
      assertKey(key);
      const ttl = normaliseTtl(ttlMs);
      assertOpen();
      const token = randomUUID();
      return hub.lock(prefix + key, token, ttl) ? { key, token } : null;
    },

    async refresh(lock: LockHandle, ttlMs: number): Promise<boolean> {
      assertLockHandle(lock);
      const ttl = normaliseTtl(ttlMs);
      assertOpen();
      return hub.refresh(prefix + lock.key, lock.token, ttl);
    },

    async release(lock: LockHandle): Promise<boolean> {
      assertLockHandle(lock);
      assertOpen();
      return hub.release(prefix + lock.key, lock.token);
    },

    async isLocked(key: string): Promise<boolean> {
      assertKey(key);
      assertOpen();
      return hub.isLocked(prefix + key);
    },

    async lockedAmong(keys: readonly string[]): Promise<Set<string>> {
      for (const key of keys) assertKey(key);
      assertOpen();
      return new Set(keys.filter((key) => hub.isLocked(prefix + key)));
    },

    async publish(channel: string, message: ControlMessage): Promise<void> {
      assertKey(channel, "channel");
      const clean = checkOutgoingMessage(message);
      assertOpen();
      hub.emit(prefix + channel, clean);
    },

    async subscribe(channel: string, handler: ControlMessageHandler): Promise<() => Promise<void>> {
      assertKey(channel, "channel");
      if (typeof handler !== "function") throw new TypeError("handler must be a function");
      assertOpen();
      const fullChannel = prefix + channel;
      let active = true;
      // Delivery is asynchronous (as with Redis): a publisher never runs handlers re-entrantly,
      // and a handler unsubscribed before its turn is not called.
      const listener = (message: ControlMessage): void => {
        setImmediate(() => {
          if (!active) return;
          deliver(handler, { ...message }, fullChannel, logger);
        });
      };
      const entry = { channel: fullChannel, listener };
      hub.on(fullChannel, listener);
      listeners.add(entry);
      return async () => {
        if (!active) return;
        active = false;
        hub.off(fullChannel, listener);
        listeners.delete(entry);
      };
    },

    healthy(): boolean {
      return !closed;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const { channel, listener } of listeners) hub.off(channel, listener);
      listeners.clear();
    },
  };
}

/** Runs a handler, logging (never propagating) what it throws or rejects with. */
export function deliver(
  handler: ControlMessageHandler,
  message: ControlMessage,
  channel: string,
  logger: Logger,
): void {
  try {
    const result: unknown = handler(message);
    if (result instanceof Promise) {
      result.catch((err: unknown) => logger.error({ err, channel }, "control message handler failed"));
    }
  } catch (err) {
    logger.error({ err, channel }, "control message handler failed");
  }
}
