#!/usr/bin/env node
// Runs the compiled build (dist/, `npm run build`; the `prepare` script builds it on `npm ci`) when it was
// built from the current sources, and otherwise the TypeScript sources directly through tsx's loader: no
// build step is needed between `npm ci` and `herald start`, and an edit under src/ never runs stale code.
// The compiled build spares tsx's loader thread (35-40 MiB of RSS) and its start-up (docs/decisions.md).
import v8 from "node:v8";
import { distIsCurrent } from "./source-hash.js";

// Herald's live heap is 35-50 MiB, but with Node's default heap limit on a large machine V8 lets the old
// generation grow to 4x the live heap before a full collection, which put the API and the dispatcher at
// 250-380 MiB under load. At most 2.5x kept them at 203 MiB or less at the same throughput (docs/decisions.md,
// bench/README.md). Set before anything is loaded; `node --heap-growing-percent=N bin/herald.js` wins
// (0 gives V8's own heuristics back).
if (!process.execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) {
  v8.setFlagsFromString("--heap-growing-percent=150");
}

if (distIsCurrent()) {
  await import("../dist/cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
