import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { claimDataDir, createEmbeddedDb, DataDirLockedError } from "../../src/store/embedded-db.ts";
import { eventually } from "../support/receiver.ts";

const HOLDER = path.join(import.meta.dirname, "data-dir-holder.ts");
const holderCommand = (dir: string) => `"${process.execPath}" --import tsx "${HOLDER}" "${dir}"`;

/** State letter and parent pid of a process, from /proc; null once it is gone. */
function stat(pid: number): { state: string; ppid: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0]!, ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

/** The pid in the directory's claim, once a holder wrote it. */
const claimedPid = (dir: string) =>
  eventually(
    async () => {
      try {
        return Number(fs.readFileSync(path.join(dir, "herald.pid"), "utf8").split(/\s/)[0]);
      } catch {
        return undefined;
      }
    },
    30_000,
    "the holder's claim",
  );

describe.skipIf(!fs.existsSync("/proc/self/stat"))("the embedded data directory's claim", () => {
  let dir: string;
  const started: ChildProcess[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-lock-"));
  });
  afterEach(async () => {
    for (const c of started.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once("exit", r));
        c.kill("SIGKILL");
        await gone;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a holder killed but not yet reaped (a zombie) does not keep the store from opening", async () => {
    // The shell starts the holder in the background, then becomes `sleep`, which never waits for it:
    // once killed, the holder stays a zombie until `sleep` ends.
    const parent = spawn("sh", ["-c", `${holderCommand(dir)} & exec sleep 60`], { stdio: "ignore" });
    started.push(parent);
    const holder = await claimedPid(dir);
    expect(stat(holder)?.ppid).toBe(parent.pid);

    expect(() => claimDataDir(dir)).toThrow(DataDirLockedError);
    process.kill(holder, "SIGKILL");
    await eventually(async () => stat(holder)?.state === "Z", 30_000, "the holder to become a zombie");

    const db = await createEmbeddedDb(dir);
    try {
      expect((await db.query<{ one: number }>("SELECT 1 AS one")).rows[0]?.one).toBe(1);
      expect(stat(holder)?.state).toBe("Z");
    } finally {
      await db.close();
    }
    // Opening creates the cluster (PGlite's initdb in a child process): tens of seconds on a busy machine.
  }, 180_000);

  it("a live holder still refuses a second process, naming it", async () => {
    const holderProc = spawn("sh", ["-c", `exec ${holderCommand(dir)}`], { stdio: "ignore" });
    started.push(holderProc);
    const holder = await claimedPid(dir);
    expect(holder).toBe(holderProc.pid);
    await expect(createEmbeddedDb(dir)).rejects.toThrow(`already open by process ${holder}`);
  });

  it("a claim whose pid now belongs to a process started at another time is taken over", async () => {
    const other = spawn("sleep", ["60"], { stdio: "ignore" });
    started.push(other);
    const live = other.pid!;
    expect(stat(live)).not.toBeNull();
    // Start time 1 (a tick after boot): not this `sleep`, which has the same pid now.
    fs.writeFileSync(path.join(dir, "herald.pid"), `${live} 1\n`);
    const release = claimDataDir(dir);
    try {
      expect(fs.readFileSync(path.join(dir, "herald.pid"), "utf8").split(" ")[0]).toBe(String(process.pid));
    } finally {
      release();
    }
    expect(fs.existsSync(path.join(dir, "herald.pid"))).toBe(false);

    // The same pid without a start time (a claim written by an older Herald) counts as alive.
    fs.writeFileSync(path.join(dir, "herald.pid"), `${live}\n`);
    expect(() => claimDataDir(dir)).toThrow(`already open by process ${live}`);
  });
});
