import fs from "node:fs";
import path from "node:path";
import { newTokenValue } from "./ids.ts";
import { makePrivateDir, writePrivateFile } from "./store/data-dir.ts";

/**
 * The admin token: from HERALD_ADMIN_TOKEN, or (embedded store) generated once and kept in the data dir.
 * `created` tells the caller to print it (first start only).
 */
export function resolveAdminToken(
  envToken: string | null,
  dataDir: string,
): { token: string; created: boolean } {
  if (envToken) return { token: envToken, created: false };
  const file = path.join(dataDir, "admin-token");
  try {
    const existing = fs.readFileSync(file, "utf8").trim();
    if (existing) return { token: existing, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  makePrivateDir(dataDir);
  const token = `hra_${newTokenValue().slice(4)}`;
  writePrivateFile(file, `${token}\n`);
  return { token, created: true };
}

export function readStoredAdminToken(dataDir: string): string | null {
  try {
    return fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim() || null;
  } catch {
    return null;
  }
}
