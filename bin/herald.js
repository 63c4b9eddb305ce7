#!/usr/bin/env node
// Runs the compiled build (dist/, `npm run build`; the `prepare` script builds it on `npm ci`) when it was
// built from the current sources, and otherwise the TypeScript sources directly through tsx's loader: no
// build step is needed between `npm ci` and `herald start`, and an edit under src/ never runs stale code.
// The compiled build spares tsx's loader thread (about 35 MiB of RSS) and its start-up (docs/decisions.md).
import { distIsCurrent } from "./source-hash.js";

if (distIsCurrent()) {
  await import("../dist/cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
