import { randomBytes } from "node:crypto";
import { HERALD_TIMINGS } from "./params.ts";
import { HIGH_CEILING } from "./workload.ts";

/** The run's admin token (≥ 32 characters) and signing-secret encryption key, new for each run. */
export const ADMIN_TOKEN = `chaos-admin-${randomBytes(20).toString("hex")}`;
const ENCRYPTION_KEY = `chaos:${randomBytes(32).toString("base64")}`;

/**
 * The environment of every Herald process of the run: the one place to add a setting all of them need.
 * The inherited environment is not passed on (the machine's DATABASE_URL / REDIS_URL must never leak in),
 * only PATH and HOME.
 */
export function heraldEnv(opts: {
  port: number;
  databaseUrl?: string;
  redisUrl?: string;
  dataDir?: string;
}): NodeJS.ProcessEnv {
  const t = HERALD_TIMINGS;
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    HERALD_PORT: String(opts.port),
    HERALD_HOST: "127.0.0.1",
    HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
    HERALD_ENCRYPTION_KEY: ENCRYPTION_KEY,
    HERALD_ALLOW_PRIVATE_TARGETS: "true",
    HERALD_REQUEST_TIMEOUT_MS: String(t.requestTimeoutMs),
    HERALD_LEASE_MS: String(t.leaseMs),
    HERALD_DRAIN_LOCK_TTL_MS: String(t.drainLockTtlMs),
    HERALD_SCHEDULER_INTERVAL_MS: String(t.schedulerIntervalMs),
    HERALD_CONTROL_REFRESH_MS: String(t.controlRefreshMs),
    HERALD_RETRY_SCHEDULE_MS: t.retryScheduleMs.join(","),
    DISPATCHER_MAX_PENDING_HARD_CAP: String(HIGH_CEILING),
    HERALD_DEFAULT_PENDING_CEILING: String(HIGH_CEILING),
    HERALD_DEFAULT_DLQ_CEILING: String(HIGH_CEILING),
    HERALD_LOG_LEVEL: "info",
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...(opts.dataDir ? { HERALD_DATA_DIR: opts.dataDir } : {}),
  };
}
