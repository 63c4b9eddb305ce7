#!/usr/bin/env node
// `npm run bench`: installs bench/'s own dependencies when they are missing or older than its lock file
// (`npm ci --prefix bench`), then runs the benchmark (bench/lib/main.mjs). Options: --help.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

if (!existsSync(path.join(root, "node_modules", "tsx"))) {
  process.stderr.write(
    "bench: Herald's own dependencies are missing: run `npm ci` at the repository root first\n",
  );
  process.exit(2);
}
const installed = path.join(here, "node_modules", ".package-lock.json");
const lock = path.join(here, "package-lock.json");
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  process.stderr.write("bench: installing the benchmark's dependencies (npm ci --prefix bench)\n");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci", "--prefix", here, "--no-audit", "--no-fund"], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// Herald runs as it does after `npm ci` (the compiled build), not through tsx: build it when the sources
// changed since the last build (bin/herald.js would otherwise fall back to tsx, +35-40 MiB per process).
const { distIsCurrent } = await import("../bin/source-hash.js");
if (!distIsCurrent(root)) {
  process.stderr.write("bench: building Herald (npm run build) so it runs compiled, as after npm ci\n");
  const b = spawnSync(process.execPath, [path.join(root, "bin", "build.js")], { stdio: "inherit" });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

const { main } = await import("./lib/main.mjs");
await main(process.argv.slice(2));
// Everything is stopped and written; do not wait for the timers of abandoned waits.
process.stdout.write("", () => process.exit(0));
