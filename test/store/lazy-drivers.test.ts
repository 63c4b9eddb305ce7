import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { moduleRecorder } from "../support/module-recorder.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Each store's and coordinator's driver is loaded only by the process that uses it: PGlite costs about
 * 40 MiB of RSS, which a process on PostgreSQL must never pay, and `pg` and `redis` cost the one-process
 * embedded store memory it has no use for. Each case loads modules in a child with a loader hook that
 * records every module it loads, then looks for the drivers among them. `herald --help` loads the CLI's
 * whole module graph (every role).
 */
const HELP = `process.argv.splice(1, Infinity, "herald", "--help"); await import(${JSON.stringify(
  pathToFileURL(path.join(ROOT, "src/cli/main.ts")).href,
)});`;

const isDriver = {
  pglite: (u: string) => u.includes("@electric-sql/pglite"),
  pg: (u: string) => /\/node_modules\/pg\//.test(u),
  redis: (u: string) => /\/node_modules\/(redis|@redis\/client)\//.test(u),
};

describe("store and coordination drivers", () => {
  it("PGlite is not loaded by the CLI's modules, only when the embedded store opens", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-lazy-"));
    try {
      const loaded = recorder(dir, { DATABASE_URL: "postgres://127.0.0.1:1/none" });
      const cli = await loaded(HELP);
      expect(cli.some((u) => u.endsWith("/src/runtime/herald.ts"))).toBe(true);
      expect(cli.filter((u) => u.includes("pglite"))).toEqual([]);

      const embedded = pathToFileURL(path.join(ROOT, "src/store/embedded-db.ts")).href;
      const opened = await loaded(
        `const { createEmbeddedDb } = await import(${JSON.stringify(embedded)}); await (await createEmbeddedDb(null)).close();`,
      );
      expect(opened.some(isDriver.pglite)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("pg and redis are not loaded by the CLI's modules, only when PostgreSQL or Redis is used", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-lazy-"));
    try {
      const loaded = recorder(dir, { DATABASE_URL: "", REDIS_URL: "" });
      const cli = await loaded(HELP);
      expect(cli.some((u) => u.endsWith("/src/runtime/herald.ts"))).toBe(true);
      expect(cli.filter((u) => isDriver.pg(u) || isDriver.redis(u))).toEqual([]);

      const open = pathToFileURL(path.join(ROOT, "src/store/open.ts")).href;
      const coordination = pathToFileURL(path.join(ROOT, "src/coordination/index.ts")).href;
      // Neither connects: a pool connects at its first query, and the coordinator is closed at once.
      const used = await loaded(
        `const { openStore } = await import(${JSON.stringify(open)});
const { createCoordinator } = await import(${JSON.stringify(coordination)});
await (await openStore({ databaseUrl: "postgres://127.0.0.1:1/none", maxConcurrentPosts: 64 })).close();
await (await createCoordinator({ redisUrl: "redis://127.0.0.1:1" })).close();`,
      );
      expect(used.some(isDriver.pg)).toBe(true);
      expect(used.some(isDriver.redis)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs a script in a child node (tsx, the module recorder) and returns the URLs of the modules it loaded. */
function recorder(dir: string, env: NodeJS.ProcessEnv): (script: string) => Promise<string[]> {
  const log = path.join(dir, "loaded.txt");
  const register = moduleRecorder(dir, log);
  return async (script) => {
    fs.rmSync(log, { force: true });
    await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "--import", register, "--input-type=module", "-e", script],
      { cwd: ROOT, env: { ...process.env, ...env } },
    );
    return fs.readFileSync(log, "utf8").split("\n");
  };
}
