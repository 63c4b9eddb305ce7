import type { Db } from "./db.ts";

const checkedAt = new WeakMap<Db, number>();
const EMBEDDED_EVERY_MS = 5 * 60_000;
const POSTGRES_CHECK_EVERY_MS = 60_000;
const TABLES = ["events", "deliveries", "subscriptions", "retrigger_items"] as const;

/**
 * Keeps planner statistics from going stale. Herald's hot statements walk indexes whatever the
 * statistics say, but its look-ups by aggregate (re-trigger jobs) and the operator's lists do not: with
 * statistics from when the tables were empty PostgreSQL may scan a tenant's events once per ID.
 * - Embedded store: PGlite has no autovacuum, so the tables are analyzed at most every five minutes.
 * - PostgreSQL: autovacuum normally does it (migration 0004 makes it analyze `deliveries` after 2 % of
 *   its rows changed). Where autovacuum is off or behind, a table with more than 1,000 + 20 % of its rows
 *   changed since its last analyze is analyzed here; checked at most once a minute per process.
 * Called on every scheduler pass and before a re-trigger job's bulk look-ups.
 */
export async function refreshStatistics(db: Db, now = Date.now()): Promise<void> {
  const last = checkedAt.get(db);
  const every = db.kind === "embedded" ? EMBEDDED_EVERY_MS : POSTGRES_CHECK_EVERY_MS;
  if (last !== undefined && now - last < every) return;
  checkedAt.set(db, now);
  if (db.kind === "embedded") {
    await db.query(`ANALYZE ${TABLES.join(", ")}`);
    return;
  }
  const stale = await db.query<{ relname: string }>(
    `SELECT relname FROM pg_stat_user_tables
     WHERE schemaname = current_schema() AND relname = ANY($1::text[])
       AND n_mod_since_analyze > 1000 + 0.2 * GREATEST(n_live_tup, 0)`,
    [TABLES],
  );
  for (const t of stale.rows) {
    if ((TABLES as readonly string[]).includes(t.relname)) await db.query(`ANALYZE ${t.relname}`);
  }
}
