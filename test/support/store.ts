import { randomBytes } from "node:crypto";
import type { Db } from "../../src/store/db.ts";
import { createEmbeddedDb } from "../../src/store/embedded-db.ts";
import { migrate } from "../../src/store/migrate.ts";
import { createPgDb } from "../../src/store/pg-db.ts";
import type { AttemptResult } from "../../src/store/record.ts";

export type StoreKind = "embedded" | "postgres";

/** The stores this run tests against: always the embedded one, and PostgreSQL when DATABASE_URL is set. */
export const STORE_KINDS: StoreKind[] = process.env.DATABASE_URL ? ["embedded", "postgres"] : ["embedded"];

export interface TestStore {
  db: Db;
  /** Drops the schema (PostgreSQL) and closes the store. */
  dispose(keep?: boolean): Promise<void>;
  /** Opens another connection pool on the same schema (a second process's view); null for embedded. */
  connectAgain(): Promise<Db | null>;
  /** A DATABASE_URL that reaches this store's schema (PostgreSQL only), for child processes. */
  databaseUrl: string | null;
}

/** A fresh, migrated store: a new in-memory PGlite, or a new schema in the test PostgreSQL database. */
export async function createTestStore(kind: StoreKind): Promise<TestStore> {
  if (kind === "embedded") {
    const db = await createEmbeddedDb(null);
    await migrate(db);
    return { db, dispose: () => db.close(), connectAgain: async () => null, databaseUrl: null };
  }
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is not set");
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const db = await createPgDb({ connectionString: url, schema, max: 12 });
  await migrate(db);
  const others: Db[] = [];
  const sep = url.includes("?") ? "&" : "?";
  return {
    db,
    databaseUrl: `${url}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async connectAgain() {
      const other = await createPgDb({ connectionString: url, schema, max: 12 });
      others.push(other);
      return other;
    },
    async dispose(keep = false) {
      for (const o of others) await o.close();
      if (!keep) await db.exec(`DROP SCHEMA ${schema} CASCADE`);
      await db.close();
    },
  };
}

/** The result the dispatcher records for a 200 answer to a claimed delivery. */
export const deliveredResult = (deliveryId: number): AttemptResult => ({
  delivery_id: deliveryId,
  status: "delivered",
  response_status: 200,
  response_body: "",
  error_kind: null,
  error_detail: null,
  latency_ms: 1,
  retry_delay_ms: null,
});
