import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import type { ControlMessage, Coordinator, Logger } from "../../src/coordination/index.ts";
import { createInProcessCoordinator, InProcessHub } from "../../src/coordination/index.ts";
import { createRedisCoordinator } from "../../src/coordination/redis-coordinator.ts";

export const REDIS_URL = process.env.REDIS_URL;

/**
 * Polls `check` until it returns a truthy value, failing after `timeoutMs`.
 * The interval is only a polling pace; the condition is what synchronises.
 */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  what: string,
  { timeoutMs = 10_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function message(
  type: ControlMessage["type"],
  subscriptionId: string,
  origin?: string,
): ControlMessage {
  const m: ControlMessage = { type, subscription_id: subscriptionId, at: new Date().toISOString() };
  if (origin !== undefined) m.origin = origin;
  return m;
}

export interface RecordingLogger extends Logger {
  entries: { level: "info" | "warn" | "error"; obj: object; msg: string | undefined }[];
}

export function recordingLogger(): RecordingLogger {
  const entries: RecordingLogger["entries"] = [];
  return {
    entries,
    info: (obj, msg) => entries.push({ level: "info", obj, msg }),
    warn: (obj, msg) => entries.push({ level: "warn", obj, msg }),
    error: (obj, msg) => entries.push({ level: "error", obj, msg }),
  };
}

/**
 * One backend (a Redis prefix, or an in-process hub) that several coordinators share, the way
 * several Herald processes share one Redis.
 */
export interface Backend {
  readonly kind: "redis" | "in-process";
  readonly prefix: string;
  /** A new coordinator on this backend (closed by `teardown`). */
  make(options?: { logger?: Logger }): Coordinator;
  /** Brings a lock taken with `ttlMs` past its expiry (real time for Redis, the fake clock in-process). */
  expire(key: string, ttlMs: number): Promise<void>;
  /** Remaining ms of a lock key (without prefix), -2 when absent: PTTL. */
  pttl(key: string): Promise<number>;
  teardown(): Promise<void>;
}

export function inProcessBackend(): Backend {
  let clock = 1_700_000_000_000;
  const hub = new InProcessHub({ now: () => clock });
  const prefix = "herald:";
  const made: Coordinator[] = [];
  const probe = createInProcessCoordinator({ hub, prefix });
  return {
    kind: "in-process",
    prefix,
    make(options = {}) {
      const c = createInProcessCoordinator({ hub, prefix, ...options });
      made.push(c);
      return c;
    },
    async expire(key, ttlMs) {
      clock += ttlMs;
      if (await probe.isLocked(key)) throw new Error(`lock ${key} did not expire`);
    },
    async pttl(key) {
      return hub.pttl(prefix + key);
    },
    async teardown() {
      await Promise.all([...made, probe].map((c) => c.close()));
    },
  };
}

export function redisBackend(url: string): Backend {
  const prefix = `herald-test:${randomUUID()}:`;
  const made: Coordinator[] = [];
  const raw = createClient({ url });
  const rawReady = raw.connect();
  return {
    kind: "redis",
    prefix,
    make(options = {}) {
      // A generous command bound: a loaded CI machine must not turn a slow answer into "unavailable".
      const c = createRedisCoordinator({ url, prefix, commandTimeoutMs: 5000, ...options });
      made.push(c);
      return c;
    },
    async expire(key, ttlMs) {
      await rawReady;
      await waitUntil(async () => (await raw.exists(prefix + key)) === 0, `lock ${key} to expire`, {
        timeoutMs: ttlMs + 10_000,
      });
    },
    async pttl(key) {
      await rawReady;
      return raw.pTTL(prefix + key);
    },
    async teardown() {
      await Promise.all(made.map((c) => c.close()));
      await rawReady;
      for await (const keys of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
        if (keys.length > 0) await raw.del(keys);
      }
      await raw.close();
    },
  };
}
