import type { Db } from "./db.ts";

const analyzedAt = new WeakMap<Db, number>();
const ANALYZE_EVERY_MS = 5 * 60_000;

/**
 * The embedded store has no autovacuum, so nothing ever collects planner statistics there; without them
 * PostgreSQL takes the tables for empty and may answer "latest event of each aggregate" by scanning the
 * tenant's events once per ID (minutes for a large job instead of milliseconds). So before a job's bulk
 * look-ups, and on every scheduler pass (the claim reads the same tables), the embedded store analyzes
 * them, at most every five minutes per process (stale statistics still scale with the table's size).
 * PostgreSQL's autovacuum does this by itself.
 */
export async function refreshStatistics(db: Db, now = Date.now()): Promise<void> {
  if (db.kind !== "embedded") return;
  const last = analyzedAt.get(db);
  if (last !== undefined && now - last < ANALYZE_EVERY_MS) return;
  analyzedAt.set(db, now);
  await db.query("ANALYZE events, deliveries, subscriptions, retrigger_items");
}
