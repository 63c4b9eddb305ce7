import { afterAll, describe, expect, it } from "vitest";
import type { Db } from "../../src/store/db.ts";
import { createPgDb } from "../../src/store/pg-db.ts";

/**
 * A PostgreSQL session that goes away while Herald holds it in a transaction (a server crash or restart,
 * found by the chaos suite) fails that transaction; it must not end the process with an unhandled 'error'
 * event, and the pool must go on with new sessions.
 */
describe.skipIf(!process.env.DATABASE_URL)("PostgreSQL session lost mid-transaction", () => {
  const url = process.env.DATABASE_URL ?? "";
  let db: Db;
  let other: Db;

  afterAll(async () => {
    await db?.close();
    await other?.close();
  });

  it("fails the transaction, keeps the process, and the next transaction runs", async () => {
    db = await createPgDb({ connectionString: url, max: 2 });
    other = await createPgDb({ connectionString: url, max: 1 });
    const attempt = db.transaction(async (tx) => {
      const { rows } = await tx.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      const pid = rows[0]!.pid;
      // The session is idle in the transaction when the server ends it: the client hears of it between
      // statements, with no query of its own to fail.
      await other.query("SELECT pg_terminate_backend($1)", [pid]);
      for (let i = 0; i < 200; i++) {
        const left = await other.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]);
        if (left.rowCount === 0) break;
      }
      await tx.query("SELECT 1");
    });
    await expect(attempt).rejects.toThrow();
    const after = await db.transaction((tx) => tx.query<{ one: number }>("SELECT 1 AS one"));
    expect(after.rows[0]!.one).toBe(1);
  });
});
