import { type ChildProcess, execFile, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect } from "vitest";
import { eventually } from "./receiver.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/herald.js");
/** PGlite takes several seconds to open a data directory: generous, but bounded. */
export const DEADLINE_MS = 60_000;

/** The environment of a user with an embedded store in `dataDir`: none of the runner's Herald settings leak in. */
export function cliEnv(dataDir: string, port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === "DATABASE_URL" || k === "REDIS_URL" || k.startsWith("HERALD_") || k.startsWith("DISPATCHER_"))
      continue;
    env[k] = v;
  }
  return {
    ...env,
    HERALD_DATA_DIR: dataDir,
    HERALD_PORT: String(port),
    HERALD_ALLOW_PRIVATE_TARGETS: "true",
    HERALD_LOG_LEVEL: "warn",
  };
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `herald …` child (bin/herald.js, from the repository root) with its output so far and its exit. */
export class Child {
  stdout = "";
  stderr = "";
  exit: Run | null = null;
  readonly proc: ChildProcess;
  readonly exited: Promise<Run>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.proc = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
      this.stdout += d;
    });
    this.proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise<Run>((resolve) => {
      this.proc.on("close", (code, signal) => {
        this.exit = { code, signal, stdout: this.stdout, stderr: this.stderr };
        resolve(this.exit);
      });
    });
  }

  /** Resolves with the exit, or kills the child and throws after the deadline. */
  async waitExit(what: string, timeoutMs = DEADLINE_MS): Promise<Run> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.proc.kill("SIGKILL");
        reject(
          new Error(
            `${what} did not exit within ${timeoutMs} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<void> {
    if (this.exit) return;
    this.proc.kill("SIGKILL");
    await this.waitExit("killed child", 10_000).catch(() => {});
  }
}

/** Runs one CLI command to its end (killed after the deadline). */
export function runHerald(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Child(args, env).waitExit(`herald ${args.join(" ")}`);
}

/** A command's JSON output, once it exited 0. */
export function json<T>(run: Run): T {
  expect(run.code, `exit code; stderr: ${run.stderr}`).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** Waits until `GET /healthz` answers 200, failing early if the server exits. */
export async function waitHealthy(child: Child, port: number): Promise<void> {
  await eventually(
    async () => {
      if (child.exit) {
        throw new Error(
          `herald exited early (${child.exit.code})\nstdout: ${child.stdout}\nstderr: ${child.stderr}`,
        );
      }
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    DEADLINE_MS,
    "GET /healthz to answer",
  );
}

const execHerald = promisify(execFile);

/** Runs `herald <args>` against the API at `url` with `token`; resolves with exit code, stdout and stderr. */
export async function heraldAt(
  url: string,
  token: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await execHerald(process.execPath, [BIN, ...args, "--api-url", url, "--token", token], {
      cwd: ROOT,
      timeout: DEADLINE_MS,
    });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : 1, out: x.stdout ?? "", err: x.stderr ?? "" };
  }
}
