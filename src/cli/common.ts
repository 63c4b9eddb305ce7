import type { Command } from "commander";
import { ConfigError } from "../config.ts";
import { DataDirLockedError } from "../store/embedded-db.ts";
import { ApiError } from "./client.ts";

/**
 * Prints a clear message and exits: 2 for configuration problems, 1 for everything else. With `--json`
 * the message is `{"error":{"code","message"}}` on stderr (an API error keeps the server's code).
 */
export function fail(err: unknown, flags?: { json?: boolean | undefined }): never {
  if (flags?.json) {
    const config = err instanceof ConfigError || err instanceof DataDirLockedError;
    const code = err instanceof ApiError ? err.code : config ? "config" : "error";
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
    process.exit(config ? 2 : 1);
  }
  if (err instanceof ConfigError || err instanceof DataDirLockedError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof ApiError) {
    process.stderr.write(`error (${err.status} ${err.code}): ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

export interface ClientFlags {
  apiUrl?: string;
  token?: string;
  json?: boolean;
}

export function clientCommand(cmd: Command): Command {
  return cmd
    .option("--api-url <url>", "Herald API base URL (default HERALD_URL or http://HERALD_HOST:HERALD_PORT)")
    .option(
      "--token <token>",
      "bearer token (default HERALD_TOKEN, HERALD_ADMIN_TOKEN or the data dir's admin token)",
    )
    .option("--json", "machine-readable output");
}

export function output(flags: ClientFlags, data: unknown, human: () => void) {
  if (flags.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else human();
}
