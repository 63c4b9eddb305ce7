/**
 * Settings, read once from the environment and validated at start. Every bad value is reported with
 * the variable's name, what it got, and what it accepts; all problems are reported together.
 */
import path from "node:path";
import {
  DEFAULT_RETRY_SCHEDULE_MS,
  parseRetrySchedule,
  RETRY_SCHEDULE_ENV,
} from "./domain/retry-schedule.ts";
import { type EncryptionKey, parseEncryptionKeys } from "./store/secret-box.ts";

export interface Settings {
  databaseUrl: string | null;
  dataDir: string;
  redisUrl: string | null;
  redisPrefix: string;
  port: number;
  host: string;
  adminToken: string | null;
  /**
   * HERALD_ENCRYPTION_KEY: the keys that seal signing secrets at rest, the first sealing, every one
   * opening (src/store/secret-box.ts). Null on the embedded store: it keeps its own key in the data dir.
   */
  encryptionKeys: EncryptionKey[] | null;
  allowPrivateTargets: boolean;
  pushDrain: boolean;
  drainLockTtlMs: number;
  /** Wait for the WAL flush when committing claims and results (events are always flushed). */
  dispatchSyncCommit: boolean;
  /** Honour X-Forwarded-For/-Proto from a reverse proxy (client address, https for Secure cookies). */
  trustProxy: boolean;
  schedulerIntervalMs: number;
  controlRefreshMs: number;
  retryScheduleMs: number[];
  requestTimeoutMs: number;
  leaseMs: number;
  maxConcurrentPosts: number;
  maxPendingHardCap: number;
  defaultPendingCeiling: number;
  defaultDlqCeiling: number;
  maxBodyBytes: number;
  /**
   * How many subscriptions (not deleted) one tenant may have, unless the admin set another limit for
   * it (HERALD_MAX_SUBSCRIPTIONS_PER_TENANT; PUT /v1/tenants/:tenant_id/limits).
   */
  maxSubscriptionsPerTenant: number;
  logLevel: string;
  /** How often the panel's sampler records pending and DLQ counts (HERALD_SAMPLE_INTERVAL_MS). */
  sampleIntervalMs: number;
  /**
   * The embedded store's PGlite compiled by V8's optimising WebAssembly compiler too, not only its baseline
   * one (HERALD_EMBEDDED_WASM_OPTIMIZE): faster, and more memory (src/runtime/embedded-process.ts).
   */
  embeddedWasmOptimize: boolean;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

/** The highest subscription limit a tenant may have, by environment or by the admin's override. */
export const MAX_SUBSCRIPTIONS_LIMIT = 1_000_000;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  int(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v)) {
      this.problems.push(`${name} must be a whole number between ${min} and ${max}; got "${v}"`);
      return def;
    }
    const n = Number(v);
    if (n < min || n > max) {
      this.problems.push(`${name} must be between ${min} and ${max}; got ${n}`);
      return def;
    }
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    const low = v.toLowerCase();
    if (["true", "1", "yes", "on"].includes(low)) return true;
    if (["false", "0", "no", "off"].includes(low)) return false;
    this.problems.push(`${name} must be true or false; got "${v}"`);
    return def;
  }

  url(name: string, protocols: string[]): string | null {
    const v = this.raw(name);
    if (v === undefined) return null;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) {
        this.problems.push(`${name} must be a ${protocols.join(" or ")} URL; got protocol "${u.protocol}"`);
        return null;
      }
      return v;
    } catch {
      this.problems.push(`${name} is not a valid URL`);
      return null;
    }
  }

  encryptionKeys(): EncryptionKey[] | null {
    const v = this.raw("HERALD_ENCRYPTION_KEY");
    if (v === undefined) return null;
    const parsed = parseEncryptionKeys(v);
    if (parsed.ok) return parsed.keys;
    this.problems.push(parsed.message);
    return null;
  }

  retrySchedule(): number[] {
    const v = this.raw(RETRY_SCHEDULE_ENV);
    if (v === undefined) return [...DEFAULT_RETRY_SCHEDULE_MS];
    const parsed = parseRetrySchedule(v);
    if (parsed.ok) return parsed.value;
    this.problems.push(parsed.message);
    return [...DEFAULT_RETRY_SCHEDULE_MS];
  }
}

/** Reads and validates every setting; throws one ConfigError listing each bad value. */
export function loadSettings(env: Env = process.env): Settings {
  const r = new Reader(env);
  const databaseUrl = r.url("DATABASE_URL", ["postgres:", "postgresql:"]);
  const redisUrl = r.url("REDIS_URL", ["redis:", "rediss:"]);
  const requestTimeoutMs = r.int("HERALD_REQUEST_TIMEOUT_MS", 15000, 100, 300000);
  const maxPendingHardCap = r.int("DISPATCHER_MAX_PENDING_HARD_CAP", 50000, 100, 10_000_000);
  const adminToken = r.raw("HERALD_ADMIN_TOKEN") ?? null;
  if (adminToken !== null && adminToken.length < 16) {
    r.problems.push("HERALD_ADMIN_TOKEN must be at least 16 characters long");
  }
  if (databaseUrl !== null && adminToken === null) {
    r.problems.push("HERALD_ADMIN_TOKEN is required when DATABASE_URL is set");
  }
  const encryptionKeys = r.encryptionKeys();
  if (databaseUrl !== null && r.raw("HERALD_ENCRYPTION_KEY") === undefined) {
    r.problems.push(
      "HERALD_ENCRYPTION_KEY is required when DATABASE_URL is set: <key id>:<base64 of 32 bytes>, e.g. k1:$(openssl rand -base64 32)",
    );
  }
  const settings: Settings = {
    databaseUrl,
    dataDir: path.resolve(r.raw("HERALD_DATA_DIR") ?? "./.herald"),
    redisUrl,
    redisPrefix: r.raw("HERALD_REDIS_PREFIX") ?? "herald:",
    port: r.int("HERALD_PORT", 8080, 0, 65535),
    host: r.raw("HERALD_HOST") ?? "127.0.0.1",
    adminToken,
    encryptionKeys,
    allowPrivateTargets: r.bool("HERALD_ALLOW_PRIVATE_TARGETS", false),
    pushDrain: r.bool("HERALD_PUSH_DRAIN", true),
    drainLockTtlMs: r.int("HERALD_DRAIN_LOCK_TTL_MS", 15000, 100, 3_600_000),
    dispatchSyncCommit: r.bool("HERALD_DISPATCH_SYNC_COMMIT", false),
    trustProxy: r.bool("HERALD_TRUST_PROXY", false),
    schedulerIntervalMs: r.int("HERALD_SCHEDULER_INTERVAL_MS", 10000, 10, 3_600_000),
    controlRefreshMs: r.int("HERALD_CONTROL_REFRESH_MS", 60000, 100, 3_600_000),
    retryScheduleMs: r.retrySchedule(),
    requestTimeoutMs,
    leaseMs: r.int("HERALD_LEASE_MS", requestTimeoutMs + 15000, 1000, 3_600_000),
    maxConcurrentPosts: r.int("DISPATCHER_MAX_CONCURRENT_POSTS", 64, 1, 10000),
    maxPendingHardCap,
    // Unset defaults follow a lowered hard cap; an explicit value above the cap is an error.
    defaultPendingCeiling: r.int(
      "HERALD_DEFAULT_PENDING_CEILING",
      Math.min(10000, maxPendingHardCap),
      100,
      maxPendingHardCap,
    ),
    defaultDlqCeiling: r.int(
      "HERALD_DEFAULT_DLQ_CEILING",
      Math.min(1000, maxPendingHardCap),
      100,
      maxPendingHardCap,
    ),
    maxBodyBytes: r.int("HERALD_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
    maxSubscriptionsPerTenant: r.int("HERALD_MAX_SUBSCRIPTIONS_PER_TENANT", 100, 1, MAX_SUBSCRIPTIONS_LIMIT),
    logLevel: r.raw("HERALD_LOG_LEVEL") ?? "info",
    sampleIntervalMs: r.int("HERALD_SAMPLE_INTERVAL_MS", 60000, 1000, 3_600_000),
    embeddedWasmOptimize: r.bool("HERALD_EMBEDDED_WASM_OPTIMIZE", false),
  };
  if (!LOG_LEVELS.includes(settings.logLevel)) {
    r.problems.push(`HERALD_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}; got "${settings.logLevel}"`);
  }
  if (settings.leaseMs <= settings.requestTimeoutMs) {
    r.problems.push(
      `HERALD_LEASE_MS must be greater than HERALD_REQUEST_TIMEOUT_MS (${settings.requestTimeoutMs}); got ${settings.leaseMs}`,
    );
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return settings;
}

/** The HERALD_ENCRYPTION_KEY of tests (and of child processes they start): a fixed, public key. */
export const TEST_ENCRYPTION_KEY = "test:dGVzdC1lbmNyeXB0aW9uLWtleS0wMTIzNDU2Nzg5YWI=";

/** Settings for tests and embedding: defaults, overridden field by field. */
export function testSettings(overrides: Partial<Settings> = {}): Settings {
  const base = loadSettings({
    HERALD_ADMIN_TOKEN: "test-admin-token-0123456789",
    HERALD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
  });
  return { ...base, ...overrides };
}
