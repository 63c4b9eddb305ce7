// The fingerprint of everything the compiled build (dist/) is made from: every file under src/ (code,
// SQL migrations, panel assets), the two tsconfig files and the build script. bin/herald.js runs dist/
// only when the fingerprint recorded at build time equals the current one, so an edit to any of these
// files sends Herald back to the TypeScript sources (tsx) until the next `npm run build`.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const DIST = path.join(ROOT, "dist");
/** Written last by the build, with the fingerprint of the sources it compiled. */
export const MANIFEST = path.join(DIST, "build.json");
const INPUTS = ["tsconfig.json", "tsconfig.build.json", "bin/build.js", "bin/source-hash.js"];

function listFiles(dir, rel, out) {
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) listFiles(dir, r, out);
    else out.push(r);
  }
  return out;
}

/** sha256 over the relative path and content of every input, in a fixed order. */
export function sourceHash(root = ROOT) {
  const files = [...listFiles(root, "src", []), ...INPUTS].sort();
  const hash = createHash("sha256");
  for (const f of files) {
    hash.update(`${f}\0`);
    hash.update(fs.readFileSync(path.join(root, f)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

/** True when dist/ holds a complete build of the current sources. Never throws. */
export function distIsCurrent(root = ROOT) {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, "dist", "build.json"), "utf8"));
    return typeof manifest.sourceHash === "string" && manifest.sourceHash === sourceHash(root);
  } catch {
    return false;
  }
}
