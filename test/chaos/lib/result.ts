import type { Findings } from "./check.ts";
import type { FaultRecord } from "./faults.ts";
import type { Scenario } from "./params.ts";
import type { Exit, HeraldChild } from "./procs.ts";
import type { ProducerStats } from "./producer.ts";
import type { ChaosReceiver } from "./receiver.ts";

export interface ScenarioResult {
  scenario: Scenario;
  startedAt: string;
  wallMs: number;
  productionMs: number;
  drainMs: number;
  faults: FaultRecord[];
  producer: ProducerStats;
  findings: Findings;
  /** Run-level violations (beyond the store checks): each must be zero. */
  runViolations: Record<string, number>;
  runExamples: Record<string, string[]>;
  unexpectedExits: Exit[];
  /** Processes the run started while PostgreSQL was down that exited at start (not counted as violations). */
  startFailures: Exit[];
  samples: { taken: number; judged: number };
  staleResultsLogged: number;
  processes: Record<string, number[]>;
}

/** Arrival times of 2xx-or-not receipts per Herald PID (receipts are kept in arrival order). */
export function receiptTimesByPid(receiver: ChaosReceiver): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const r of receiver.receipts) {
    const pid = receiver.pidOf(r.conn);
    if (pid === undefined) continue;
    let list = out.get(pid);
    if (!list) {
      list = [];
      out.set(pid, list);
    }
    list.push(r.at);
  }
  return out;
}

/** The first time in the sorted `times` within [from, to], or null. */
export function firstWithin(times: readonly number[] | undefined, from: number, to: number): number | null {
  if (!times) return null;
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  const t = times[lo];
  return t !== undefined && t <= to ? t : null;
}

/** The process of `child` that lived through the whole of [from, to], if one did. */
export function survivor(
  child: HeraldChild,
  from: number,
  to: number,
): { pid: number; until: number } | null {
  const h = child.history.find((e) => e.startedAt <= from && (e.exitedAt ?? Number.POSITIVE_INFINITY) >= to);
  return h ? { pid: h.pid, until: h.exitedAt ?? Number.POSITIVE_INFINITY } : null;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}
