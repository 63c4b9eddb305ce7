import type { Settings } from "../config.ts";
import type { Db } from "./db.ts";
import { createEmbeddedDb } from "./embedded-db.ts";
import { createPgDb } from "./pg-db.ts";

/** PostgreSQL when DATABASE_URL is set, otherwise the embedded store in HERALD_DATA_DIR. */
export async function openStore(settings: Settings, role = "herald"): Promise<Db> {
  if (settings.databaseUrl) {
    return createPgDb({
      connectionString: settings.databaseUrl,
      max: Math.max(4, Math.min(32, Math.ceil(settings.maxConcurrentPosts / 4))),
      applicationName: role,
    });
  }
  return createEmbeddedDb(settings.dataDir);
}
