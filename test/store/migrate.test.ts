import { describe, expect, it } from "vitest";
import { listMigrations, migrate } from "../../src/store/migrate.ts";
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
