#!/usr/bin/env node
/**
 * PostgreSQL's floor for Herald's row lifecycle on this machine, without Herald, HTTP or Redis:
 * `node bench/floor.mjs [--n 100000] [--workers 2] [--batch 64] [--sync] [--minimal] [--setup "<SQL>"]`.
 * Prints one JSON line; what it measures is described in `lib/floor.mjs`, and the default run measures
 * the same as its `floor` scenario (bench/README.md).
 */
import os from "node:os";
import pg from "pg";
import { measureFloor } from "./lib/floor.mjs";
import { numberOption as opt } from "./lib/util.mjs";

const args = process.argv.slice(2);
const pgUrl = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const result = await measureFloor({
  pgUrl,
  n: opt("--n", 100_000),
  workers: opt("--workers", 2),
  batch: opt("--batch", 64),
  sync: args.includes("--sync") ? "on" : "off",
  minimal: args.includes("--minimal"),
  setup: args.includes("--setup") ? (args[args.indexOf("--setup") + 1] ?? "") : null,
});
const admin = new pg.Client({ connectionString: pgUrl });
await admin.connect();
const version = (await admin.query("SHOW server_version")).rows[0].server_version;
await admin.end();
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    postgres: version,
    ...result,
  }),
);
