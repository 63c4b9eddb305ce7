import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Db } from "./db.ts";

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");
/** Any constant: serialises concurrent migrators on PostgreSQL. */
const MIGRATION_LOCK_KEY = 7_302_114_220;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(): Migration[] {
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 4)),
      name: f.replace(/\.sql$/, ""),
      sql: fs.readFileSync(path.join(MIGRATIONS_DIR, f), "utf8"),
    }));
}

/**
 * Applies pending migrations, each in its own transaction, forward only. A second process racing the
 * same migration waits on the advisory lock, then finds it applied and moves on.
 */
export async function migrate(db: Db): Promise<{ applied: string[]; current: number }> {
  // Under the lock: two sessions racing CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalog.
  await db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await tx.query(
      "CREATE TABLE IF NOT EXISTS herald_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
  });
  const applied: string[] = [];
  for (const m of listMigrations()) {
    const done = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
      const seen = await tx.query("SELECT 1 FROM herald_migrations WHERE version = $1", [m.version]);
      if (seen.rowCount > 0) return false;
      for (const statement of splitStatements(m.sql)) await tx.query(statement);
      await tx.query("INSERT INTO herald_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      return true;
    });
    if (done) applied.push(m.name);
  }
  const cur = await db.query<{ v: number | null }>("SELECT max(version) AS v FROM herald_migrations");
  return { applied, current: cur.rows[0]?.v ?? 0 };
}

/** Splits a migration file on semicolons at line ends, skipping comment-only chunks. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) =>
      s
        .split("\n")
        .filter((line) => !line.trim().startsWith("--"))
        .join("\n")
        .trim(),
    )
    .filter((s) => s.length > 0);
}
