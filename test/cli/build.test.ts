import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { sourceHash } from "../../bin/source-hash.js";
import { TEST_ENCRYPTION_KEY } from "../../src/config.ts";
import { listMigrations } from "../../src/store/migrate.ts";
import { moduleRecorder } from "../support/module-recorder.ts";
import { createTestStore, STORE_KINDS } from "../support/store.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const run = promisify(execFile);
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A folder with Herald's launcher, build script and tsconfig files, and the repository's node_modules. */
function scaffold(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-build-"));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, "bin"));
  for (const f of [
    "bin/herald.js",
    "bin/source-hash.js",
    "bin/build.js",
    "tsconfig.json",
    "tsconfig.build.json",
  ]) {
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module" }));
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

describe("bin/herald.js", () => {
  it("runs dist/ only while it was built from the current sources, otherwise src/ through tsx", async () => {
    const dir = scaffold();
    const main = path.join(dir, "src/cli/main.ts");
    fs.mkdirSync(path.dirname(main), { recursive: true });
    fs.writeFileSync(main, 'const where: string = "src";\nprocess.stdout.write(where);\n');
    fs.mkdirSync(path.join(dir, "dist/cli"), { recursive: true });
    fs.writeFileSync(path.join(dir, "dist/cli/main.js"), 'process.stdout.write("dist");\n');
    const manifest = path.join(dir, "dist/build.json");
    const record = () => fs.writeFileSync(manifest, JSON.stringify({ sourceHash: sourceHash(dir) }));
    const herald = async () =>
      (await run(process.execPath, [path.join(dir, "bin/herald.js")], { cwd: dir })).stdout;

    record();
    expect(await herald()).toBe("dist");
    fs.appendFileSync(main, "// an edit\n");
    expect(await herald()).toBe("src");
    record();
    expect(await herald()).toBe("dist");
    // Any file under src/ counts (a new migration, an asset), and so do the tsconfig files.
    fs.writeFileSync(path.join(dir, "src/0099_new.sql"), "SELECT 1;\n");
    expect(await herald()).toBe("src");
    fs.rmSync(path.join(dir, "src/0099_new.sql"));
    expect(await herald()).toBe("dist");
    fs.appendFileSync(path.join(dir, "tsconfig.build.json"), "\n");
    expect(await herald()).toBe("src");
    record();
    fs.writeFileSync(manifest, "{ not json");
    expect(await herald()).toBe("src");
    fs.rmSync(manifest);
    expect(await herald()).toBe("src");
  });

  it("runs the build of `npm run build`, which finds its migrations, without tsx", async () => {
    const dir = scaffold();
    fs.cpSync(path.join(ROOT, "src"), path.join(dir, "src"), { recursive: true });
    await run(process.execPath, [path.join(dir, "bin/build.js")], { cwd: dir });
    const built = JSON.parse(fs.readFileSync(path.join(dir, "dist/build.json"), "utf8"));
    expect(built.sourceHash).toBe(sourceHash(dir));
    const names = listMigrations().map((m) => `${m.name}.sql`);
    expect(fs.readdirSync(path.join(dir, "dist/store/migrations")).sort()).toEqual(names);

    const log = path.join(dir, "loaded.txt");
    const recorder = moduleRecorder(dir, log);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (k !== "DATABASE_URL" && k !== "REDIS_URL" && !k.startsWith("HERALD_")) env[k] = v;
    }
    for (const kind of STORE_KINDS) {
      fs.rmSync(log, { force: true });
      const store = kind === "postgres" ? await createTestStore("postgres") : null;
      try {
        const out = await run(
          process.execPath,
          ["--import", recorder, path.join(dir, "bin/herald.js"), "migrate", "--json"],
          {
            cwd: dir,
            env: store
              ? {
                  ...env,
                  DATABASE_URL: store.databaseUrl ?? "",
                  HERALD_ADMIN_TOKEN: "t".repeat(40),
                  HERALD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
                }
              : { ...env, HERALD_DATA_DIR: path.join(dir, "data") },
          },
        );
        const result = JSON.parse(out.stdout) as { applied: string[]; current: number };
        // A fresh data directory gets every migration; the PostgreSQL test schema is migrated already.
        expect(result.applied).toEqual(store ? [] : listMigrations().map((m) => m.name));
        expect(result.current).toBe(Math.max(...listMigrations().map((m) => m.version)));
        const loaded = fs.readFileSync(log, "utf8").split("\n");
        expect(loaded).toContain(pathToFileURL(path.join(dir, "dist/cli/main.js")).href);
        expect(loaded.filter((u) => u.includes("/src/") || u.includes("/tsx/"))).toEqual([]);
      } finally {
        await store?.dispose();
      }
    }
  }, 240_000);
});
