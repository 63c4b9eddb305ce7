#!/usr/bin/env node
// `npm run build`: compiles src/ to dist/ (tsc -p tsconfig.build.json, `.ts` imports rewritten to `.js`) and
// copies the files that are not TypeScript (SQL migrations, panel assets) beside it, then writes
// dist/build.json with the fingerprint of the sources it compiled (bin/source-hash.js). bin/herald.js runs
// dist/ only while that fingerprint matches the sources; otherwise it runs them through tsx.
//
// The build goes to a temporary folder first and replaces dist/ only when it is complete. It refuses to
// record a build when tsc reports an error, or when the sources changed while it ran.
//
// `--if-possible` (the `prepare` script, run by `npm ci` and `npm install`): never fails the install. When
// TypeScript is not installed (`--omit=dev`) or the build fails, it says so and leaves Herald on tsx.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { DIST, MANIFEST, ROOT, sourceHash } from "./source-hash.js";

const ifPossible = process.argv.includes("--if-possible");

class BuildError extends Error {}

function compile(tmp) {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  } catch {
    throw new BuildError(
      "TypeScript is not installed (a devDependency), so there is nothing to compile with.",
    );
  }
  const before = sourceHash();
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", tmp], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (r.status !== 0) throw new BuildError(`tsc failed (${r.status ?? r.signal}); dist/ was left as it was.`);
  // Everything under src/ that tsc does not emit: migrations (src/store/migrations/*.sql), panel assets.
  const copy = (rel) => {
    for (const entry of fs.readdirSync(path.join(ROOT, "src", rel), { withFileTypes: true })) {
      const file = path.join(rel, entry.name);
      if (entry.isDirectory()) copy(file);
      else if (!entry.name.endsWith(".ts")) {
        fs.mkdirSync(path.join(tmp, rel), { recursive: true });
        fs.copyFileSync(path.join(ROOT, "src", file), path.join(tmp, file));
      }
    }
  };
  copy("");
  if (sourceHash() !== before) throw new BuildError("the sources changed while building; build again.");
  const manifest = { sourceHash: before, builtAt: new Date().toISOString(), node: process.version };
  fs.writeFileSync(path.join(tmp, path.basename(MANIFEST)), `${JSON.stringify(manifest, null, 2)}\n`);
}

const tmp = path.join(ROOT, `dist.build-${process.pid}`);
fs.rmSync(tmp, { recursive: true, force: true });
try {
  compile(tmp);
  fs.rmSync(DIST, { recursive: true, force: true });
  fs.renameSync(tmp, DIST);
  process.stdout.write("herald build: compiled src/ to dist/\n");
} catch (err) {
  fs.rmSync(tmp, { recursive: true, force: true });
  if (!(err instanceof BuildError) && !ifPossible) throw err;
  process.stderr.write(`herald build: ${err instanceof Error ? err.message : String(err)}\n`);
  if (ifPossible) process.stderr.write("herald build: Herald will run its TypeScript sources through tsx.\n");
  process.exit(ifPossible ? 0 : 1);
}
