/**
 * V8 settings for a process that serves the embedded store (`herald start` without DATABASE_URL), where
 * PostgreSQL itself (PGlite, about 9 MB of WebAssembly) shares the process with the API and the dispatcher.
 *
 * - `--liftoff-only`: V8 compiles WebAssembly with its baseline compiler (Liftoff) and then, for hot
 *   functions, again with its optimising one (TurboFan), keeping both. Baseline only kept the benchmark's
 *   peak RSS 60–70 MiB lower, for about a fifth less throughput (bench/HISTORY.md, "The embedded store's
 *   memory"). `HERALD_EMBEDDED_WASM_OPTIMIZE=true` keeps V8's default.
 * - `--heap-growing-percent=100`: the old generation may grow to twice the live heap between full
 *   collections (bin/herald.js sets 2.5 times for every process); in this one process it saved another
 *   20 MiB with no throughput change measured.
 *
 * Both are read when V8 next compiles WebAssembly and sizes its heap, so they must be set before the
 * store opens (PGlite is imported then). A flag given on node's own command line wins.
 */
import v8 from "node:v8";
import type { Settings } from "../config.ts";

/** The flags to set for this process: none on PostgreSQL, none that the command line already chose. */
export function embeddedProcessFlags(
  settings: Pick<Settings, "databaseUrl" | "embeddedWasmOptimize">,
  execArgv: readonly string[],
): string[] {
  if (settings.databaseUrl !== null) return [];
  const given = (pattern: RegExp) => execArgv.some((a) => pattern.test(a));
  const flags: string[] = [];
  if (!settings.embeddedWasmOptimize && !given(/^--(no-)?(liftoff|wasm[-_]tier)/))
    flags.push("--liftoff-only");
  if (!given(/^--heap[-_]growing[-_]percent\b/)) flags.push("--heap-growing-percent=100");
  return flags;
}

/** Sets `embeddedProcessFlags` in this process's V8 and returns them (for the start-up log). */
export function tuneEmbeddedProcess(settings: Settings): string[] {
  const flags = embeddedProcessFlags(settings, process.execArgv);
  for (const flag of flags) v8.setFlagsFromString(flag);
  return flags;
}
