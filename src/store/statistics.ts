import type { Db } from "./db.ts";

const checkedAt = new WeakMap<Db, number>();
const EMBEDDED_EVERY_MS = 5 * 60_000;
/** How often a process asks PostgreSQL which tables' statistics fell behind (a look at pg_stat_user_tables). */
export const STATISTICS_CHECK_MS = 2_000;
const TABLES = ["events", "deliveries", "subscriptions", "retrigger_items"] as const;

/**
 * Keeps planner statistics from going stale. Herald's hot statements walk indexes whatever the
 * statistics say, but its look-ups by aggregate (re-trigger jobs) and the operator's lists do not: with
 * statistics from when the tables were empty PostgreSQL may scan a tenant's events once per ID.
 * - Embedded store: PGlite has no autovacuum, so the tables are analyzed at most every five minutes.
 * - PostgreSQL: autovacuum normally does it (migration 0004 makes it analyze `deliveries` after 2 % of
 *   its rows changed), but it looks once a minute, and a new deployment's `deliveries` can grow from
 *   empty to 100,000 rows before it does; without statistics the unordered claim may then pick the
 *   queue-head index and sort every pending row of the queue on each call (bench/HISTORY.md, fourth
 *   round). So, checked at most every two seconds per process, a table is analyzed here when it holds
 *   more than 1,000 + twice the rows its statistics know of (it grew), or when more than 1,000 + 20 % of
 *   its rows changed and nobody analyzed it for a minute (autovacuum off or behind).
 * Called by each dispatcher process's StatisticsKeeper, and before a re-trigger job's bulk look-ups.
 */
export async function refreshStatistics(db: Db, now = Date.now()): Promise<void> {
  const last = checkedAt.get(db);
  const every = db.kind === "embedded" ? EMBEDDED_EVERY_MS : STATISTICS_CHECK_MS;
  if (last !== undefined && now - last < every) return;
  checkedAt.set(db, now);
  if (db.kind === "embedded") {
    await db.query(`ANALYZE ${TABLES.join(", ")}`);
    return;
  }
  const stale = await db.query<{ relname: string }>(
    `SELECT t.relname FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
     WHERE t.schemaname = current_schema() AND t.relname = ANY($1::text[])
       AND (t.n_live_tup > 1000 + 2 * GREATEST(c.reltuples, 0)
            OR (t.n_mod_since_analyze > 1000 + 0.2 * GREATEST(t.n_live_tup, 0)
                AND COALESCE(GREATEST(t.last_analyze, t.last_autoanalyze), '-infinity') < now() - interval '1 minute'))`,
    [TABLES],
  );
  for (const t of stale.rows) {
    if ((TABLES as readonly string[]).includes(t.relname)) await db.query(`ANALYZE ${t.relname}`);
  }
}
