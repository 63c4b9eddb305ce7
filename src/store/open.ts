import type { Settings } from "../config.ts";
import type { Db } from "./db.ts";
import { createEmbeddedDb, type EmbeddedDbOptions } from "./embedded-db.ts";

/**
 * PostgreSQL when DATABASE_URL is set, otherwise the embedded store in HERALD_DATA_DIR. Each driver is
 * imported only when it is chosen: `pg` costs the one-process embedded store memory it never uses, as
 * PGlite would a process on PostgreSQL (docs/decisions.md).
 */
export async function openStore(
  settings: Settings,
  role = "herald",
  log?: EmbeddedDbOptions["log"],
): Promise<Db> {
  if (settings.databaseUrl) {
    const { createPgDb } = await import("./pg-db.ts");
    return createPgDb({
      connectionString: settings.databaseUrl,
      max: Math.max(4, Math.min(32, Math.ceil(settings.maxConcurrentPosts / 4))),
      applicationName: role,
    });
  }
  return createEmbeddedDb(settings.dataDir, log ? { log } : {});
}
