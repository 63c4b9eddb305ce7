import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { freePort } from "../../support/port.ts";
import { trackPid, untrackPid } from "./procs.ts";

async function portOpen(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/** A redis-server of the run's own on a spare loopback port, without persistence, that the run may kill. */
export class ChaosRedis {
  private proc: ChildProcess | null = null;
  private constructor(readonly port: number) {}

  static async create(): Promise<ChaosRedis> {
    const r = new ChaosRedis(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const p = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    if (p.pid) trackPid(p.pid);
    this.proc = p;
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(this.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL: the outage starts at once, and Redis comes back empty. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGKILL");
    await exited;
    if (p.pid) untrackPid(p.pid);
  }
}
