import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { makePrivateDir, tightenTree } from "./data-dir.ts";
import type { Db, Queryable, QueryOptions, QueryResult } from "./db.ts";
import { redactDbError, statementLabel } from "./db-error.ts";
import { preparedStatements } from "./embedded-prepared.ts";

interface PgliteLike {
  query<R>(
    sql: string,
    params?: unknown[],
  ): Promise<{ rows: R[]; affectedRows?: number; command?: string; rowCount?: number }>;
}

/** Where the embedded store reports what it did to its data directory. */
export interface EmbeddedDbOptions {
  log?: { warn(obj: object, msg: string): void };
}

function wrap(conn: PgliteLike): Queryable {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      try {
        const res = await conn.query<R>(sql, params as unknown[]);
        const rowCount = res.rows.length > 0 ? res.rows.length : (res.affectedRows ?? 0);
        return { rows: res.rows, rowCount };
      } catch (err) {
        throw redactDbError(err, statementLabel(sql));
      }
    },
  };
}

export class DataDirLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(
      `The embedded store in ${dir} is already open by process ${pid}. The embedded store serves one process only; ` +
        "stop the other process, or set DATABASE_URL to a PostgreSQL database to run several Herald processes.",
    );
    this.name = "DataDirLockedError";
  }
}

/**
 * What /proc says of a process (Linux): its state letter and its start time (clock ticks after boot,
 * field 22 of /proc/<pid>/stat); null when there is no such entry (no process, no /proc, or hidden).
 */
function procStat(pid: number | "self"): { state: string; startTime: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined || !/^\d+$/.test(startTime)) return null;
  return { state, startTime };
}

/**
 * The data directory's claim: this process's pid and, where /proc exists, its start time, so a later
 * reader can tell this process from another that was given the same pid after it died.
 */
function claimText(): string {
  const self = procStat("self");
  return self ? `${process.pid} ${self.startTime}\n` : `${process.pid}\n`;
}

/**
 * Whether the process that wrote a claim still runs. Where /proc shows it: not when it is a zombie
 * (killed and not yet reaped by its parent, which a supervisor restarting Herald at once after a SIGKILL
 * sees), nor when its pid now belongs to a process started at another time. Otherwise (no /proc, or a
 * process /proc hides from this user) signal 0 answers: no such process is dead, anything else alive.
 */
function holderAlive(pid: number, startTime: string | null): boolean {
  const stat = procStat(pid);
  if (stat !== null) {
    if (stat.state === "Z" || stat.state === "X" || stat.state === "x") return false;
    return startTime === null || stat.startTime === startTime;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** A claim's holder: "<pid>" or "<pid> <start time>"; null when the text is neither. */
function parseClaim(text: string): { pid: number; startTime: string | null } | null {
  const m = /^(\d+)(?:\s+(\d+))?\s*$/.exec(text.trim());
  if (!m) return null;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, startTime: m[2] ?? null } : null;
}

/**
 * Claims the data directory for this process: refuses when a live process holds it, takes over a stale
 * claim (its holder gone, a zombie, or its pid reused). Returns the release function.
 */
export function claimDataDir(dir: string): () => void {
  makePrivateDir(dir);
  const lockPath = path.join(dir, "herald.pid");
  const mine = claimText();
  for (let i = 0; i < 3; i++) {
    try {
      fs.writeFileSync(lockPath, mine, { flag: "wx", mode: 0o600 });
      return () => {
        try {
          if (fs.readFileSync(lockPath, "utf8") === mine) fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = parseClaim(fs.readFileSync(lockPath, "utf8"));
      if (holder && holder.pid !== process.pid && holderAlive(holder.pid, holder.startTime)) {
        throw new DataDirLockedError(dir, holder.pid);
      }
      fs.rmSync(lockPath, { force: true });
    }
  }
  throw new Error(`could not claim the data directory ${dir}`);
}

/**
 * The embedded store's postgresql.conf, written by PGlite at every open (it replaces the file). PGlite's
 * default shared_buffers, 128 MB, lives in the process's WASM memory. 32 MB kept the benchmark's peak RSS
 * about 100 MiB lower at the same throughput; with PGlite on V8's baseline compiler (embedded-process.ts),
 * 16 MB saved 15-20 MiB more at the same throughput, and 8 MB lost a fifth of the rate on 300,000
 * deliveries: docs/decisions.md, bench/HISTORY.md "Memory".
 */
const EMBEDDED_CONF = ["shared_buffers = 16MB"];

/** How long creating a cluster may take (a few seconds on a laptop) before the child is stopped. */
const INITDB_TIMEOUT_MS = 120_000;

/**
 * Creates a new data directory's cluster (PGlite's initdb) in a short-lived child process. Run in this
 * process, initdb's WASM instance would set its peak resident memory at about 850 MB, of which the
 * store never needs more than a fraction again; in a child, the memory goes back when it exits.
 * Nothing to do when the cluster exists: a PG_VERSION file, the test PGlite itself makes before its initdb.
 */
async function initClusterApart(pgdata: string): Promise<void> {
  if (fs.existsSync(path.join(pgdata, "PG_VERSION"))) return;
  const pgliteUrl = import.meta.resolve("@electric-sql/pglite");
  const script = `const { PGlite } = await import(process.env.HERALD_PGLITE_URL);
const db = await PGlite.create(process.env.HERALD_PGDATA);
await db.close();`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, HERALD_PGLITE_URL: pgliteUrl, HERALD_PGDATA: pgdata },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      stderr += `(no result after ${INITDB_TIMEOUT_MS / 1000} s)`;
    }, INITDB_TIMEOUT_MS);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `could not create the embedded store in ${pgdata} (initdb exited with ${signal ?? code}): ${stderr.trim()}`,
          ),
        );
    });
  });
}

/**
 * PGlite, one session. `dataDir` null keeps everything in memory (tests). Statements from concurrent
 * callers are serialised by PGlite itself; a transaction holds the session until it ends.
 *
 * PGlite is imported here, when the embedded store is opened, not at the top of the module: loading it
 * costs about 40 MiB, which a process on PostgreSQL (DATABASE_URL set) must not pay (docs/decisions.md).
 */
export async function createEmbeddedDb(dataDir: string | null, opts: EmbeddedDbOptions = {}): Promise<Db> {
  const unclaim = dataDir ? claimDataDir(dataDir) : () => {};
  if (dataDir) {
    // Before PGlite starts: what an earlier version, or another program, left readable (data-dir.ts).
    const tightened = tightenTree(dataDir);
    if (tightened > 0) {
      opts.log?.warn(
        { data_dir: dataDir, entries: tightened },
        "the data directory was open to other local users: made it 0700 and its files 0600",
      );
    }
  }
  let pglite: PGlite;
  let runNamed: ReturnType<typeof preparedStatements>;
  try {
    const { PGlite, types, protocol } = await import("@electric-sql/pglite");
    const parsers = { [types.INT8]: (v: string) => Number(v), [types.NUMERIC]: (v: string) => Number(v) };
    if (dataDir) {
      const pgdata = path.join(dataDir, "pgdata");
      await initClusterApart(pgdata);
      pglite = await PGlite.create(pgdata, { parsers, postgresqlconf: EMBEDDED_CONF });
      // Again after PGlite's start: initdb's files and those PGlite writes at every start come out wider
      // than 0600 (data-dir.ts). Expected, so not reported.
      tightenTree(dataDir);
    } else {
      pglite = await PGlite.create({ parsers, postgresqlconf: EMBEDDED_CONF });
    }
    runNamed = preparedStatements(pglite, protocol.serialize);
  } catch (err) {
    unclaim();
    throw err;
  }
  const q = wrap(pglite);
  return {
    kind: "embedded",
    async query<R>(
      sql: string,
      params: readonly unknown[] = [],
      options?: QueryOptions,
    ): Promise<QueryResult<R>> {
      if (!options?.name) return q.query<R>(sql, params);
      try {
        return await runNamed<R>(options.name, sql, params);
      } catch (err) {
        throw redactDbError(err, statementLabel(sql, options.name));
      }
    },
    async exec(sql: string) {
      try {
        await pglite.exec(sql);
      } catch (err) {
        throw redactDbError(err, statementLabel(sql));
      }
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      try {
        return await pglite.transaction((tx) => fn(wrap(tx)));
      } catch (err) {
        throw redactDbError(err, "transaction");
      }
    },
    async close() {
      try {
        await pglite.close();
      } finally {
        try {
          // Files PGlite wrote while it ran with a wider mode than asked (data-dir.ts).
          if (dataDir) tightenTree(dataDir);
        } finally {
          unclaim();
        }
      }
    },
  };
}
