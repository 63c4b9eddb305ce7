import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

/**
 * Writes, into `dir`, a loader hook that appends every module URL a Node process loads to `log`, and the
 * file that registers it; returns that file, for the child's `--import`.
 */
export function moduleRecorder(dir: string, log: string): string {
  const hooks = path.join(dir, "record-hooks.mjs");
  fs.writeFileSync(
    hooks,
    `import fs from "node:fs";\nexport async function load(url, context, next) {\n  fs.appendFileSync(${JSON.stringify(log)}, url + "\\n");\n  return next(url, context);\n}\n`,
  );
  const register = path.join(dir, "record.mjs");
  fs.writeFileSync(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  return register;
}
