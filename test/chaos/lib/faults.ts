import type { Rng } from "./rng.ts";

export type FaultKind =
  | "dispatcher_kill"
  | "api_kill"
  | "redis_outage"
  | "postgres_crash"
  | "stall"
  | "embedded_kill"
  | "manual_pause";

/** One fault injected: when, on what, and how long until the system served again. */
export interface FaultRecord {
  kind: FaultKind;
  target: string;
  /** Offset in the run (ms) the plan gave it, and the wall-clock start and end. */
  plannedAtMs: number;
  at: number;
  end: number;
  pidBefore?: number;
  pidAfter?: number;
  /** ms from the fault's end until the system served again (see the scenario), null when never seen. */
  recoveryMs?: number | null;
  note?: string;
}

export interface PlannedFault {
  kind: FaultKind;
  atMs: number;
  /** For kills: how long the process stays down before it is started again (0 = at once). */
  downMs: number;
  /** For kills: which of the processes (index), drawn now so the plan is the seed's alone. */
  target: number;
}

/** Kill instants spread at random over [from, to) of the run, sorted. */
function instants(rng: Rng, n: number, fromMs: number, toMs: number): number[] {
  return Array.from({ length: n }, () => Math.round(rng.between(fromMs, toMs))).sort((a, b) => a - b);
}

/** The PostgreSQL scenario's faults over a run of `durationMs` (a pure function of the seed). */
export function planDistributed(
  rng: Rng,
  durationMs: number,
  p: {
    dispatcherKills: number;
    apiKills: number;
    redisOutageS: number;
    pgCrashes: number;
    stalls: number;
    dispatchers: number;
    apis: number;
  },
): PlannedFault[] {
  const plan: PlannedFault[] = [];
  for (const at of instants(rng, p.dispatcherKills, 0.05 * durationMs, 0.92 * durationMs)) {
    plan.push({
      kind: "dispatcher_kill",
      atMs: at,
      downMs: rng.pick([0, 0, 300, 1000, 3000]),
      target: rng.int(0, p.dispatchers - 1),
    });
  }
  instants(rng, p.apiKills, 0.1 * durationMs, 0.85 * durationMs).forEach((at, i) => {
    plan.push({ kind: "api_kill", atMs: at, downMs: rng.pick([0, 500, 1500]), target: i % p.apis });
  });
  plan.push({ kind: "manual_pause", atMs: Math.round(0.15 * durationMs), downMs: 3000, target: 0 });
  if (p.redisOutageS > 0) {
    plan.push({
      kind: "redis_outage",
      atMs: Math.round(0.28 * durationMs),
      downMs: p.redisOutageS * 1000,
      target: 0,
    });
  }
  for (let i = 0; i < p.pgCrashes; i++) {
    const at = (0.5 + (0.15 * i) / Math.max(1, p.pgCrashes)) * durationMs;
    plan.push({
      kind: "postgres_crash",
      atMs: Math.round(at + rng.between(-2000, 2000)),
      downMs: 0,
      target: 0,
    });
  }
  for (let i = 0; i < p.stalls; i++) {
    const at = (0.7 + (0.15 * i) / Math.max(1, p.stalls)) * durationMs;
    plan.push({ kind: "stall", atMs: Math.round(at), downMs: 0, target: rng.int(0, p.dispatchers - 1) });
  }
  return plan.sort((a, b) => a.atMs - b.atMs);
}

/** The embedded scenario's kills: each restarted at once (a supervisor's restart). */
export function planEmbedded(rng: Rng, durationMs: number, kills: number): PlannedFault[] {
  return instants(rng, kills, 0.05 * durationMs, 0.9 * durationMs).map((atMs) => ({
    kind: "embedded_kill" as const,
    atMs,
    downMs: 0,
    target: 0,
  }));
}

export function summarize(
  records: readonly FaultRecord[],
): Record<
  string,
  { count: number; recoveryMs: { min: number; median: number; max: number } | null; notRecovered: number }
> {
  const out: Record<
    string,
    { count: number; recoveryMs: { min: number; median: number; max: number } | null; notRecovered: number }
  > = {};
  for (const kind of new Set(records.map((r) => r.kind))) {
    const of = records.filter((r) => r.kind === kind);
    const times = of
      .map((r) => r.recoveryMs)
      .filter((x): x is number => typeof x === "number")
      .sort((a, b) => a - b);
    out[kind] = {
      count: of.length,
      recoveryMs: times.length
        ? { min: times[0]!, median: times[Math.floor(times.length / 2)]!, max: times[times.length - 1]! }
        : null,
      notRecovered: of.filter((r) => r.recoveryMs === null).length,
    };
  }
  return out;
}

/**
 * When a delivery answered 2xx may legitimately be sent again: from a request timeout (plus a margin) before
 * a crash-type fault began (the delivery was in flight, its result not yet recorded) until it ended.
 */
export function crashWindows(
  records: readonly FaultRecord[],
  requestTimeoutMs: number,
): Array<[number, number]> {
  const crashes: FaultKind[] = ["dispatcher_kill", "postgres_crash", "stall", "embedded_kill"];
  return records
    .filter((r) => crashes.includes(r.kind))
    .map((r) => [r.at - requestTimeoutMs - 2000, Math.max(r.end, r.at) + 1000] as [number, number]);
}
