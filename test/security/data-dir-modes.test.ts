import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testSettings } from "../../src/config.ts";
import { type HeraldProcess, startHerald } from "../../src/runtime/herald.ts";

/**
 * The embedded store's data directory on disk (issue 18, items 2 and 7): private to the user (the
 * directory tree 0700, every file 0600) whether Herald creates it or finds it open to others, and no
 * signing secret in any of its files, the WAL included.
 */

/** Every entry under `root` (root included) whose mode is not 0700 for a directory or 0600 for a file. */
function wideEntries(root: string): string[] {
  const wide: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) wide.push(`${(st.mode & 0o777).toString(8)} ${path.relative(root, p)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(root);
  return wide;
}

/** Sets every directory under `root` 0755 and every file 0666 (what PGlite and older versions left); returns how many. */
function loosen(root: string): number {
  let n = 0;
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o666);
    n++;
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(root);
  return n;
}

/** Files under `root` whose bytes contain `needle`. */
function filesContaining(root: string, needle: string): string[] {
  const found: string[] = [];
  const bytes = Buffer.from(needle, "utf8");
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
    else if (st.isFile() && fs.readFileSync(p).includes(bytes)) found.push(path.relative(root, p));
  };
  visit(root);
  return found;
}

describe("the embedded store's data directory", () => {
  let base: string;
  let dataDir: string;
  let logLines: string[];
  let proc: HeraldProcess | null = null;

  const start = async () => {
    logLines = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    proc = await startHerald(
      testSettings({
        port: 0,
        host: "127.0.0.1",
        dataDir,
        adminToken: null,
        encryptionKeys: null,
        allowPrivateTargets: true,
      }),
      { roles: { api: true, dispatcher: false }, logger: pino({ level: "info" }, sink) },
    );
    return proc;
  };
  const stop = async () => {
    await proc?.stop();
    proc = null;
  };
  const api = async <T>(method: string, p: string, body?: unknown) => {
    const res = await fetch(`${proc?.url}${p}`, {
      method,
      headers: {
        authorization: `Bearer ${proc?.adminToken}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  /** Subscriptions, a rotation, events, then a WAL segment switch and a checkpoint: files written anew. */
  const write = async (tenant: string) => {
    const secrets: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await api<{ subscription_id: string; secret: string }>("POST", "/v1/subscriptions", {
        tenant_id: tenant,
        url: "http://127.0.0.1:9/hook",
        event_types: ["*"],
      });
      expect(r.status).toBe(201);
      secrets.push(r.body.secret);
      if (i === 0) {
        const rotated = await api<{ secret: string }>(
          "POST",
          `/v1/subscriptions/${r.body.subscription_id}/rotate-secret`,
          { overlap_seconds: 3600 },
        );
        expect(rotated.status).toBe(200);
        secrets.push(rotated.body.secret);
      }
    }
    for (let i = 0; i < 20; i++) {
      const e = await api("POST", "/v1/events", {
        tenant_id: tenant,
        event_type: "thing.happened",
        payload: { i, filler: "x".repeat(20_000) },
      });
      expect(e.status).toBe(202);
    }
    const db = proc!.ctx.db;
    await db.query("SELECT pg_switch_wal()");
    await db.exec("CHECKPOINT");
    return secrets;
  };

  beforeAll(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), "herald-modes-"));
    dataDir = path.join(base, "data");
  });
  afterAll(async () => {
    await stop();
    fs.rmSync(base, { recursive: true, force: true });
  });

  it("creates a new directory 0700 with files 0600, keeps them so while it writes and after it stops, and no file holds a signing secret", {
    timeout: 300_000,
  }, async () => {
    await start();
    const secrets = await write("fresh");
    expect(wideEntries(dataDir)).toEqual([]);
    await stop();
    expect(wideEntries(dataDir)).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, "admin-token"))).toBe(true);
    expect(fs.readFileSync(path.join(dataDir, "encryption-key"), "utf8")).toMatch(
      /^local:[A-Za-z0-9+/]{43}=\n$/,
    );
    // A new directory is not news: nothing to warn about.
    expect(logLines.filter((l) => l.includes("open to other local users"))).toEqual([]);

    // The WAL, the heap and every other file: neither the prefix nor any secret's key material.
    expect(filesContaining(dataDir, "whsec_")).toEqual([]);
    for (const s of secrets) expect(filesContaining(dataDir, s.slice("whsec_".length))).toEqual([]);
    expect(filesContaining(dataDir, "enc:v1:local:").length).toBeGreaterThan(0);
  });

  it("tightens a directory left open to other users at start, says so once with the count, and keeps it tight", {
    timeout: 300_000,
  }, async () => {
    const loosened = loosen(dataDir);
    expect(wideEntries(dataDir).length).toBe(loosened);
    await start();
    const warnings = logLines
      .map((l) => JSON.parse(l) as { level: number; msg: string; entries?: number })
      .filter((l) => l.msg.includes("open to other local users"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, entries: loosened });
    expect(wideEntries(dataDir)).toEqual([]);
    await write("again");
    expect(wideEntries(dataDir)).toEqual([]);
    await stop();
    expect(wideEntries(dataDir)).toEqual([]);
    expect(filesContaining(dataDir, "whsec_")).toEqual([]);
  });
});
