/**
 * The chaos run's parameters: a profile (`ci`, bounded to a few minutes; `full`, the published run) whose
 * figures each CHAOS_* variable can override. Herald's own timings are shortened so that retries, leases and
 * lock expiries all happen many times within a run.
 */
export type Scenario = "postgres" | "embedded";

export interface ChaosParams {
  profile: "ci" | "full";
  seed: number;
  scenarios: Scenario[];
  /** Events the producer gets accepted (PostgreSQL scenario). */
  events: number;
  /** How long the producer spreads them over, in seconds; the faults fall within this window. */
  durationS: number;
  batchSize: number;
  dispatchers: number;
  apis: number;
  dispatcherKills: number;
  apiKills: number;
  redisOutageS: number;
  pgCrashes: number;
  stalls: number;
  embeddedEvents: number;
  embeddedDurationS: number;
  embeddedKills: number;
  /** The longest the final drain may take once production and faults stopped. */
  drainTimeoutS: number;
  /**
   * Duplicates allowed, as a share of deliveries (the bar for the full run: 0.1 %). Each kill re-sends
   * what its process had answered but not yet recorded, so a short run with several kills (ci) needs more room.
   */
  maxDuplicateRate: number;
  embeddedMaxDuplicateRate: number;
}

/** Herald's settings in every process of the run (besides the store, ports and token). */
export const HERALD_TIMINGS = {
  requestTimeoutMs: 5000,
  leaseMs: 12000,
  drainLockTtlMs: 1000,
  schedulerIntervalMs: 2000,
  controlRefreshMs: 5000,
  /** Eight attempts within about 8 s, so rows reach the DLQ during the run. */
  retryScheduleMs: [200, 400, 800, 1000, 1500, 2000, 2000],
} as const;

const PROFILES: Record<ChaosParams["profile"], Omit<ChaosParams, "profile" | "seed" | "scenarios">> = {
  ci: {
    events: 3000,
    durationS: 75,
    batchSize: 50,
    dispatchers: 3,
    apis: 2,
    dispatcherKills: 4,
    apiKills: 1,
    redisOutageS: 8,
    pgCrashes: 1,
    stalls: 1,
    embeddedEvents: 800,
    embeddedDurationS: 40,
    embeddedKills: 3,
    drainTimeoutS: 150,
    maxDuplicateRate: 0.05,
    // A kill re-sends at most what was in flight: a few dozen POSTs per kill at most, against 800 events.
    embeddedMaxDuplicateRate: 0.05,
  },
  full: {
    events: 100_000,
    durationS: 900,
    batchSize: 100,
    dispatchers: 3,
    apis: 2,
    dispatcherKills: 24,
    apiKills: 2,
    redisOutageS: 30,
    pgCrashes: 1,
    stalls: 1,
    embeddedEvents: 20_000,
    embeddedDurationS: 300,
    embeddedKills: 12,
    drainTimeoutS: 600,
    maxDuplicateRate: 0.001,
    embeddedMaxDuplicateRate: 0.001,
  },
};

function num(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const v = env[name];
  if (v === undefined || v.trim() === "") return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`${name} must be a number between ${min} and ${max}; got "${v}"`);
  }
  return n;
}

export function readParams(env: NodeJS.ProcessEnv = process.env): ChaosParams {
  const profile = env.CHAOS_PROFILE === "ci" ? "ci" : "full";
  const base = PROFILES[profile];
  const scenarios = (env.CHAOS_SCENARIOS ?? "postgres,embedded")
    .split(",")
    .map((s) => s.trim())
    .filter((s): s is Scenario => s === "postgres" || s === "embedded");
  return {
    profile,
    seed: num(env, "CHAOS_SEED", Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1),
    scenarios,
    events: num(env, "CHAOS_EVENTS", base.events, 10, 10_000_000),
    durationS: num(env, "CHAOS_DURATION_S", base.durationS, 10, 86_400),
    batchSize: num(env, "CHAOS_BATCH_SIZE", base.batchSize, 1, 1000),
    dispatchers: num(env, "CHAOS_DISPATCHERS", base.dispatchers, 2, 16),
    apis: num(env, "CHAOS_APIS", base.apis, 2, 8),
    dispatcherKills: num(env, "CHAOS_DISPATCHER_KILLS", base.dispatcherKills, 0, 10_000),
    apiKills: num(env, "CHAOS_API_KILLS", base.apiKills, 0, 1000),
    redisOutageS: num(env, "CHAOS_REDIS_OUTAGE_S", base.redisOutageS, 0, 3600),
    pgCrashes: num(env, "CHAOS_PG_CRASHES", base.pgCrashes, 0, 100),
    stalls: num(env, "CHAOS_STALLS", base.stalls, 0, 100),
    embeddedEvents: num(env, "CHAOS_EMBEDDED_EVENTS", base.embeddedEvents, 10, 10_000_000),
    embeddedDurationS: num(env, "CHAOS_EMBEDDED_DURATION_S", base.embeddedDurationS, 10, 86_400),
    embeddedKills: num(env, "CHAOS_EMBEDDED_KILLS", base.embeddedKills, 0, 10_000),
    drainTimeoutS: num(env, "CHAOS_DRAIN_TIMEOUT_S", base.drainTimeoutS, 10, 86_400),
    maxDuplicateRate: num(env, "CHAOS_MAX_DUPLICATE_RATE", base.maxDuplicateRate, 0, 1),
    embeddedMaxDuplicateRate: num(
      env,
      "CHAOS_EMBEDDED_MAX_DUPLICATE_RATE",
      base.embeddedMaxDuplicateRate,
      0,
      1,
    ),
  };
}
