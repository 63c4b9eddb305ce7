/** Child processes of one benchmark run: start, talk to (IPC), sample memory, stop. */
import { execFileSync, fork, spawn } from "node:child_process";
import { createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { sleep } from "./util.mjs";

const children = new Set();

/** Every child still running is killed when the driver exits, however it exits. */
process.on("exit", () => {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
});

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB; null once it has gone. */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    return { peakMiB: kb("VmHWM") / 1024, rssMiB: kb("VmRSS") / 1024 };
  } catch {
    return null;
  }
}

/**
 * Resets a process's peak resident memory (VmHWM) to its current RSS (`5` to /proc/<pid>/clear_refs,
 * Linux ≥ 4.0), so a later peak belongs to what ran after the reset and not to, say, an earlier fill.
 * False when the kernel or the permissions do not allow it (the peak then covers the process's life).
 */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples VmRSS of the given processes every `everyMs` and keeps each one's peak (VmHWM read at stop()
 * as well, so short peaks between samples are not missed).
 */
export function memorySampler(procs, everyMs = 250) {
  const peaks = new Map(procs.map((p) => [p.role, 0]));
  const sample = () => {
    for (const p of procs) {
      const m = memoryOf(p.pid);
      if (m) peaks.set(p.role, Math.max(peaks.get(p.role) ?? 0, m.rssMiB, m.peakMiB));
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return Object.fromEntries([...peaks].map(([role, mib]) => [role, Math.round(mib)]));
    },
  };
}

function track(child, name, logFile) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (logFile) {
    const out = createWriteStream(logFile, { flags: "a" });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
  }
  child.benchName = name;
  return child;
}

/** A bench worker module (receiver, ceiling, queue workers) with an IPC channel and a request/answer helper. */
export function forkWorker(modulePath, { name, args = [], env = {}, logFile, execArgv = [] }) {
  const child = track(
    fork(modulePath, args, {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      execArgv,
    }),
    name,
    logFile,
  );
  let nextId = 1;
  const pending = new Map();
  const listeners = new Set();
  child.on("message", (m) => {
    if (m && m.re !== undefined && pending.has(m.re)) {
      const { resolve, reject } = pending.get(m.re);
      pending.delete(m.re);
      if (m.error) reject(new Error(`${name}: ${m.error}`));
      else resolve(m);
      return;
    }
    for (const l of listeners) l(m);
  });
  child.once("exit", (code, signal) => {
    for (const { reject } of pending.values()) reject(new Error(`${name} exited (${code ?? signal})`));
    pending.clear();
  });
  return {
    name,
    child,
    pid: child.pid,
    /** Sends a command and resolves with the child's answer (bounded by timeoutMs). */
    call(cmd, body = {}, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: no answer to ${cmd} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        child.send({ id, cmd, ...body });
      });
    },
    /** Sends without waiting for an answer; resolves once the message is handed to the channel. */
    send(cmd, body = {}) {
      return new Promise((resolve, reject) =>
        child.send({ cmd, ...body }, (err) => (err ? reject(err) : resolve())),
      );
    },
    onEvent(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** Waits for an unsolicited message matching `pred`. */
    waitEvent(pred, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new Error(`${name}: no matching event within ${timeoutMs} ms`));
        }, timeoutMs);
        const off = this.onEvent((m) => {
          if (pred(m)) {
            clearTimeout(timer);
            off();
            resolve(m);
          }
        });
      });
    },
    stop: () => stopChild(child),
  };
}

/** A plain child process (Herald), output to a log file. */
export function spawnProcess(command, args, { name, env = {}, logFile, cwd }) {
  return track(
    spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }),
    name,
    logFile,
  );
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopChild(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(t);
}

/** Resolves when `url` answers 2xx, or throws after `timeoutMs` (or when `child` exits first). */
export async function waitHttpReady(url, { timeoutMs = 30_000, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(
        `${child.benchName ?? "process"} exited (${child.exitCode ?? child.signalCode}) before ${url} answered`,
      );
    }
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Resolves when a line of the child's output matches `re`, or throws after `timeoutMs` / on exit. */
export function waitOutput(child, re, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (d) => {
      buf += d.toString();
      if (re.test(buf)) done(null);
      if (buf.length > 1_000_000) buf = buf.slice(-100_000);
    };
    const onExit = (code, signal) =>
      done(new Error(`${child.benchName} exited (${code ?? signal}): ${buf.slice(-2000)}`));
    const timer = setTimeout(
      () => done(new Error(`${child.benchName}: no ${re} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    function done(err) {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve();
    }
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
}

let clockTicks = null;
/** Kernel clock ticks per second (`getconf CLK_TCK`, 100 on Linux nearly always). */
export function ticksPerSecond() {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU ticks (user + system) of every process now, by pid with its command name, and of the whole
 * machine: `busy` (everything but idle and iowait) and `total`, from /proc/stat. Linux only.
 */
export function cpuSnapshot() {
  const procs = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // Fields after the command name, which may itself hold spaces: state is [0], utime [11], stime [12].
      const close = stat.lastIndexOf(")");
      const f = stat.slice(close + 2).split(" ");
      procs.set(Number(name), {
        comm: stat.slice(stat.indexOf("(") + 1, close),
        ticks: Number(f[11]) + Number(f[12]),
      });
    } catch {}
  }
  const cpu = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
  return {
    at: performance.now(),
    procs,
    busy: user + nice + system + irq + softirq + (steal ?? 0),
    total: user + nice + system + idle + iowait + irq + softirq + (steal ?? 0),
  };
}

/**
 * Ticks process `pid` used between two snapshots: all of its ticks when it started in between (or its
 * pid was reused by another command), nothing when it has gone.
 */
export function ticksBetween(a, b, pid) {
  const after = b.procs.get(pid);
  if (!after) return 0;
  const before = a.procs.get(pid);
  return before && before.comm === after.comm ? after.ticks - before.ticks : after.ticks;
}

/**
 * CPU seconds used between start and stop() by each given process, by the PostgreSQL server (every
 * `postgres` process; a backend that exits in between loses what it used) and Redis, and by the whole
 * machine (so the driver and anything else running count too). Linux only; elsewhere stop() returns null.
 */
export function cpuMeter(procs) {
  if (!existsSync("/proc/stat")) return { stop: () => null };
  const hz = ticksPerSecond();
  const start = cpuSnapshot();
  const s = (ticks) => Math.round((ticks / hz) * 100) / 100;
  return {
    stop() {
      const end = cpuSnapshot();
      const roles = {};
      for (const p of procs) {
        if (start.procs.has(p.pid) && end.procs.has(p.pid))
          roles[p.role] = s(ticksBetween(start, end, p.pid));
      }
      let postgres = 0;
      let redis = 0;
      for (const [pid, { comm }] of end.procs) {
        if (comm === "postgres") postgres += ticksBetween(start, end, pid);
        else if (comm === "redis-server") redis += ticksBetween(start, end, pid);
      }
      return {
        wallSeconds: Math.round(end.at - start.at) / 1000,
        machineSeconds: s(end.busy - start.busy),
        cores: os.availableParallelism(),
        roles,
        postgres: s(postgres),
        redis: s(redis),
      };
    },
  };
}
