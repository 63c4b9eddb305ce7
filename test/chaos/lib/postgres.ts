import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "../../support/port.ts";
import { trackPid, untrackPid } from "./procs.ts";

const run = promisify(execFile);

/** Where initdb and pg_ctl live: `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
async function binDir(): Promise<string> {
  try {
    const { stdout } = await run("pg_config", ["--bindir"]);
    const dir = stdout.trim();
    if (fs.existsSync(path.join(dir, "initdb"))) return dir;
  } catch {
    /* fall through */
  }
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const dir = path.join(root, v, "bin");
    if (fs.existsSync(path.join(dir, "initdb"))) return dir;
  }
  throw new Error("no PostgreSQL server binaries (initdb, pg_ctl) found");
}

/** initdb and postgres refuse to run as root: run them as the `postgres` user when we are root. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

/**
 * A PostgreSQL cluster of the run's own (initdb in a temporary directory, a spare loopback port) that the
 * fault driver may crash: never the machine's shared server.
 */
export class PrivatePostgres {
  private constructor(
    readonly root: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  static async create(): Promise<PrivatePostgres> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chaos-pg-"));
    const server = new PrivatePostgres(root, await freePort(), await binDir());
    if (process.getuid?.() === 0) await run("chown", ["-R", "postgres:", root]);
    const [cmd, args] = asPostgres(path.join(server.bin, "initdb"), [
      "-D",
      server.dataDir,
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
      "-E",
      "UTF8",
    ]);
    await run(cmd, args, { timeout: 120_000 });
    await server.start();
    await server.psql("CREATE DATABASE chaos");
    return server;
  }

  get dataDir(): string {
    return path.join(this.root, "data");
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/chaos`;
  }

  /** The postmaster's PID (first line of postmaster.pid), or null when it is not running. */
  get pid(): number | null {
    try {
      const n = Number(fs.readFileSync(path.join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      return Number.isInteger(n) && n > 0 ? n : null;
    } catch {
      return null;
    }
  }

  private async pgCtl(args: string[]): Promise<void> {
    const [cmd, a] = asPostgres(path.join(this.bin, "pg_ctl"), ["-D", this.dataDir, ...args]);
    await run(cmd, a, { timeout: 120_000 });
  }

  async start(): Promise<void> {
    const opts = [
      `-p ${this.port}`,
      "-c listen_addresses=127.0.0.1",
      `-c unix_socket_directories=${this.root}`,
      "-c max_connections=300",
      "-c fsync=on",
    ].join(" ");
    await this.pgCtl(["-w", "-t", "60", "-l", path.join(this.root, "postgres.log"), "-o", opts, "start"]);
    const pid = this.pid;
    if (pid) trackPid(pid);
  }

  /** A crash: `pg_ctl -m immediate stop` (no checkpoint, recovery from the WAL at the next start). */
  async crash(): Promise<void> {
    const pid = this.pid;
    await this.pgCtl(["-m", "immediate", "-w", "stop"]);
    if (pid) untrackPid(pid);
  }

  /** Runs one statement on the `postgres` database (setting up the run's own). */
  async psql(sql: string): Promise<void> {
    const client = new pg.Client({ connectionString: this.url.replace(/\/chaos$/, "/postgres") });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    const pid = this.pid;
    if (pid) {
      try {
        await this.pgCtl(["-m", "immediate", "-w", "stop"]);
      } catch {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      untrackPid(pid);
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
