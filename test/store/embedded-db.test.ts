import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createEmbeddedDb } from "../../src/store/embedded-db.ts";

/**
 * The embedded store on disk: a new data directory's cluster is created by a child process (PGlite's
 * initdb would otherwise set the serving process's peak memory), then opened here with Herald's
 * postgresql.conf.
 */
describe("the embedded store in a data directory", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-embedded-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("creates the cluster in a new directory, keeps rows across a reopen, and runs with 32 MB of shared buffers", async () => {
    const first = await createEmbeddedDb(dir);
    try {
      expect(fs.existsSync(path.join(dir, "pgdata", "PG_VERSION"))).toBe(true);
      const buffers = await first.query<{ shared_buffers: string }>("SHOW shared_buffers");
      expect(buffers.rows[0]?.shared_buffers).toBe("16MB");
      await first.exec("CREATE TABLE kept (n int); INSERT INTO kept VALUES (41), (42)");
    } finally {
      await first.close();
    }
    const again = await createEmbeddedDb(dir);
    try {
      const rows = await again.query<{ n: number }>("SELECT n FROM kept ORDER BY n");
      expect(rows.rows.map((r) => r.n)).toEqual([41, 42]);
      const buffers = await again.query<{ shared_buffers: string }>("SHOW shared_buffers");
      expect(buffers.rows[0]?.shared_buffers).toBe("16MB");
    } finally {
      await again.close();
    }
  });

  it("names the directory when the cluster cannot be created, and frees the directory for another try", async () => {
    // A file where the cluster's folder should be: initdb in the child fails.
    fs.writeFileSync(path.join(dir, "pgdata"), "not a folder");
    await expect(createEmbeddedDb(dir)).rejects.toThrow(
      `could not create the embedded store in ${path.join(dir, "pgdata")}`,
    );
    fs.rmSync(path.join(dir, "pgdata"));
    const db = await createEmbeddedDb(dir);
    try {
      const one = await db.query<{ one: number }>("SELECT 1 AS one");
      expect(one.rows[0]?.one).toBe(1);
    } finally {
      await db.close();
    }
  });
});
