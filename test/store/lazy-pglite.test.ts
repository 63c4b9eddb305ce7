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
 * PGlite costs about 40 MiB of RSS once loaded; a process on PostgreSQL must never load it. Loads the
 * CLI's whole module graph (`herald --help` imports every role) in a child with a loader hook that records
 * each module it loads, then looks for PGlite among them.
 */
describe("the embedded store's PGlite", () => {
  it("is not loaded by the CLI's modules, only when the embedded store opens", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-lazy-"));
    try {
      const log = path.join(dir, "loaded.txt");
      const register = moduleRecorder(dir, log);
      const loaded = async (script: string) => {
        fs.rmSync(log, { force: true });
        await promisify(execFile)(
          process.execPath,
          ["--import", "tsx", "--import", register, "--input-type=module", "-e", script],
          { cwd: ROOT, env: { ...process.env, DATABASE_URL: "postgres://127.0.0.1:1/none" } },
        );
        return fs.readFileSync(log, "utf8").split("\n");
      };
      const main = pathToFileURL(path.join(ROOT, "src/cli/main.ts")).href;
      const cli = await loaded(
        `process.argv.splice(1, Infinity, "herald", "--help"); await import(${JSON.stringify(main)});`,
      );
      expect(cli.some((u) => u.endsWith("/src/runtime/herald.ts"))).toBe(true);
      expect(cli.filter((u) => u.includes("pglite"))).toEqual([]);

      const embedded = pathToFileURL(path.join(ROOT, "src/store/embedded-db.ts")).href;
      const opened = await loaded(
        `const { createEmbeddedDb } = await import(${JSON.stringify(embedded)}); await (await createEmbeddedDb(null)).close();`,
      );
      expect(opened.some((u) => u.includes("@electric-sql/pglite"))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
