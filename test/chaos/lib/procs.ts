import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERALD_BIN = fileURLToPath(new URL("../../../bin/herald.js", import.meta.url));

/** Every PID this run started and has not seen exit: killed when the test process exits, however it exits. */
const started = new Set<number>();
process.on("exit", () => killAllStarted());

/** SIGKILLs every process of the run still alive (the last resort of every clean-up path). */
export function killAllStarted(): void {
  for (const pid of started) {
    try {
      process.kill(pid, "SIGCONT");
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  started.clear();
}

export function trackPid(pid: number): void {
  started.add(pid);
}

export function untrackPid(pid: number): void {
  started.delete(pid);
}

export interface Exit {
  name: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  /** The run asked for this exit (a SIGKILL of the fault driver, the final stop). */
  expected: boolean;
}

/** One Herald process of the run, started again under the same name after each kill. */
export class HeraldChild {
  child: ChildProcess | null = null;
  pid = 0;
  startedAt = 0;
  /** Every process this name has had, oldest first. */
  readonly history: Array<{ pid: number; startedAt: number; exitedAt: number | null }> = [];
  /** PIDs the run signalled to exit: their exits are expected. */
  private readonly doomed = new Set<number>();
  private exited: Promise<void> = Promise.resolve();
  private ops: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly command: "api" | "dispatcher" | "start",
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
    private readonly onExit: (e: Exit) => void,
  ) {}

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    const log = fs.openSync(path.join(this.logDir, `${this.name}.log`), "a");
    const child = spawn(process.execPath, [HERALD_BIN, this.command], {
      env: this.env,
      stdio: ["ignore", log, log],
    });
    fs.closeSync(log);
    if (child.pid === undefined) throw new Error(`could not start ${this.name}`);
    if (process.env.CHAOS_DEBUG)
      process.stdout.write(`[chaos] ${new Date().toISOString()} started ${this.name} pid ${child.pid}\n`);
    const pid = child.pid;
    trackPid(pid);
    this.child = child;
    this.pid = pid;
    this.startedAt = Date.now();
    const entry = { pid, startedAt: this.startedAt, exitedAt: null as number | null };
    this.history.push(entry);
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        untrackPid(pid);
        entry.exitedAt = Date.now();
        const expected = this.doomed.delete(pid);
        this.onExit({ name: this.name, pid, code, signal, at: Date.now(), expected });
        resolve();
      });
    });
  }

  /** Sends a signal; SIGKILL and SIGTERM mark the coming exit as asked for. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    if (sig === "SIGKILL" || sig === "SIGTERM") this.doomed.add(this.pid);
    if (process.env.CHAOS_DEBUG)
      process.stdout.write(`[chaos] ${new Date().toISOString()} ${sig} ${this.name} pid ${this.pid}\n`);
    process.kill(this.pid, sig);
  }

  /** Resolves once the current process has exited (and was reaped). */
  waitExit(): Promise<void> {
    return this.exited;
  }

  /**
   * SIGKILL, then start again at once or after `delayMs`; unless `waitForExit`, the new process does not wait
   * for the old one's reaping. One kill at a time per name: a second waits for the first's restart.
   */
  killAndRestart(delayMs: number, waitForExit: boolean): Promise<void> {
    const run = this.ops.then(async () => {
      const old = this.exited;
      this.signal("SIGKILL");
      if (waitForExit) await old;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      this.start();
    });
    this.ops = run.catch(() => {});
    return run;
  }

  /** Stops for good: SIGCONT (a stopped process cannot handle SIGTERM), SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    const done = this.exited;
    try {
      process.kill(this.pid, "SIGCONT");
    } catch {
      /* gone */
    }
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await done;
    clearTimeout(timer);
  }
}

/** Polls `url` until it answers 200, or throws after `timeoutMs`. */
export async function waitHttpOk(url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} did not answer ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, Math.min(250, 20 * 2 ** i)));
  }
}

/** Runs `node bin/herald.js <args>` to completion (migrate), returning its output; throws on a non-zero status. */
export async function runHerald(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 120_000,
): Promise<string> {
  const child = spawn(process.execPath, [HERALD_BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid) trackPid(child.pid);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  if (child.pid) untrackPid(child.pid);
  if (code !== 0) throw new Error(`herald ${args.join(" ")} exited with ${code}: ${out.slice(-2000)}`);
  return out;
}
