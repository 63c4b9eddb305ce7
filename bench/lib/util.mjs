/** Small helpers shared by the driver and the child processes (no dependencies). */
import { performance } from "node:perf_hooks";

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function now() {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The p-th percentile (0..100) of an ascending array, nearest-rank; null for an empty array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(values) {
  const xs = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Polls `check` every `everyMs` until it returns a truthy value or `timeoutMs` passes (then returns null). */
export async function waitUntil(check, { timeoutMs, everyMs = 50 }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() >= deadline) return null;
    await sleep(everyMs);
  }
}

/** The event type of every benchmark event but the fan-out's. */
export const EVENT_TYPE = "bench.event";

/** A small JSON payload of a realistic size (about 200 bytes), carrying the benchmark's key. */
export function payload(k, n, t) {
  return {
    k,
    n,
    t,
    contract_id: `c-${String(n).padStart(7, "0")}`,
    status: "executed",
    amount_cents: 125_000 + (n % 997),
    currency: "EUR",
    note: "benchmark event: counterparty signed, countersigned, archived",
  };
}

/** The number after `name` in the command's arguments (`--n 100000`, underscores allowed), else `dflt`. */
export function numberOption(name, dflt, argv = process.argv.slice(2)) {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(String(argv[i + 1]).replaceAll("_", "")) : dflt;
}

/**
 * HERALD_ENCRYPTION_KEY of the Herald processes a benchmark starts on PostgreSQL (required there): the
 * benchmark's data is thrown away, so a fixed key will do.
 */
export const BENCH_ENCRYPTION_KEY = `bench:${Buffer.alloc(32, 7).toString("base64")}`;
