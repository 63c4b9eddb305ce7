import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { listMigrations, migrate } from "../../src/store/migrate.ts";
import { createPgDb } from "../../src/store/pg-db.ts";
import { createTestStore, STORE_KINDS } from "../support/store.ts";

const latest = () => Math.max(...listMigrations().map((m) => m.version));

describe.each(STORE_KINDS)("migrations on the %s store", (kind) => {
  it("applies nothing to a store that is already migrated", async () => {
    const store = await createTestStore(kind);
    try {
      const again = await migrate(store.db);
      expect(again).toEqual({ applied: [], current: latest() });
      const rows = await store.db.query<{ name: string }>(
        "SELECT name FROM herald_migrations ORDER BY version",
      );
      expect(rows.rows.map((r) => r.name)).toEqual(listMigrations().map((m) => m.name));
    } finally {
      await store.dispose();
    }
  });
});

describe.skipIf(!process.env.DATABASE_URL)("migrations from a second PostgreSQL process", () => {
  it("finds the schema a first process migrated and applies nothing", async () => {
    const store = await createTestStore("postgres");
    try {
      const other = await store.connectAgain();
      expect(await migrate(other!)).toEqual({ applied: [], current: latest() });
    } finally {
      await store.dispose();
    }
  });
});

// Regression: two processes migrating a fresh database at once used to collide on
// CREATE TABLE IF NOT EXISTS herald_migrations (a duplicate key in PostgreSQL's catalog).
describe.skipIf(!process.env.DATABASE_URL)("migrations racing on PostgreSQL", () => {
  it("lets exactly one of two processes apply each migration on a fresh schema", async () => {
    const schema = `t_mig_${randomBytes(6).toString("hex")}`;
    const url = process.env.DATABASE_URL!;
    const a = await createPgDb({ connectionString: url, schema, max: 2 });
    const b = await createPgDb({ connectionString: url, schema, max: 2 });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      expect([...ra.applied, ...rb.applied].sort()).toEqual(
        listMigrations()
          .map((m) => m.name)
          .sort(),
      );
      expect(ra.current).toBe(rb.current);
    } finally {
      await a.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await a.close();
      await b.close();
    }
  });
});
