import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Child, cliEnv, json, runHerald, waitHealthy } from "../support/cli.ts";
import { freePort } from "../support/port.ts";
import { eventually, Receiver } from "../support/receiver.ts";

/** `herald retrigger create` for tenant cli's contract.executed events; the selection and options follow. */
const CREATE = ["retrigger", "create", "--tenant", "cli", "--event-type", "contract.executed"];

describe("herald retrigger against a running herald start", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let server: Child;
  let base: string;
  let token: string;
  let rx: Receiver;
  const api = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    expect(res.status).toBeLessThan(300);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-rt-cli-"));
    const port = await freePort();
    env = cliEnv(path.join(dir, "data"), port);
    base = `http://127.0.0.1:${port}`;
    server = new Child(["start"], env);
    await waitHealthy(server, port);
    token = fs.readFileSync(path.join(dir, "data", "admin-token"), "utf8").trim();
    rx = await new Receiver().start();
    for (const tenant of ["cli", "other"]) {
      const s = await api<{ secret: string }>("POST", "/v1/subscriptions", {
        tenant_id: tenant,
        url: rx.url(`/${tenant}`),
        event_types: ["contract.executed"],
      });
      rx.trust(s.secret);
    }
    const events = (tenant: string, ids: string[]) =>
      api("POST", "/v1/events/batch", {
        events: ids.map((a) => ({
          tenant_id: tenant,
          event_type: "contract.executed",
          aggregate_id: a,
          payload: { a },
        })),
      });
    await events("cli", ["c-1", "c-2", "c-3"]);
    await events("other", ["o-1"]);
    await rx.waitFor((r) => r.length >= 4, 30_000, "the original deliveries");
  });

  afterAll(async () => {
    if (server && !server.exit) {
      server.proc.kill("SIGTERM");
      await server.exited;
    }
    await rx?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("previews an IDs file with --dry-run (--json: the full list; otherwise a table and a summary) and creates nothing", async () => {
    const file = path.join(dir, "ids.txt");
    fs.writeFileSync(file, "# re-send, ticket 4711\nc-1\nc-2\n\nc-3\nc-3\no-1\nnope\n");
    const args = [...CREATE, "--ids-file", file];
    const r = await runHerald(
      [...args, "--id-kind", "aggregate", "--batch-size", "2", "--dry-run", "--json"],
      env,
    );
    const preview = json<{
      total: number;
      would_trigger: number;
      would_fail: number;
      plan: { chunks: number };
      items: Array<{ requested_id: string; outcome: string; reason: string | null }>;
    }>(r);
    expect(r.stderr).toContain("1 duplicate ID(s) collapsed");
    expect(preview).toMatchObject({ total: 5, would_trigger: 3, would_fail: 2, plan: { chunks: 3 } });
    expect(preview.items.map((i) => [i.requested_id, i.outcome, i.reason])).toEqual([
      ["c-1", "WOULD_TRIGGER", null],
      ["c-2", "WOULD_TRIGGER", null],
      ["c-3", "WOULD_TRIGGER", null],
      ["o-1", "WOULD_FAIL", "other_tenant"],
      ["nope", "WOULD_FAIL", "not_found"],
    ]);

    const human = await runHerald([...args, "--dry-run"], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/ID\s+OUTCOME\s+EVENT\s+WHY/);
    expect(human.stdout).toMatch(/o-1\s+WOULD_FAIL/);
    expect(human.stdout).toContain("5 IDs: 3 would trigger, 0 would skip, 2 would fail");
    expect(human.stdout).toContain("plan: 1 chunk(s) of up to 50");
    expect(human.stdout).toContain("dry run: nothing was created or sent");

    const list = json<{ items: unknown[] }>(await runHerald(["retrigger", "list", "--json"], env));
    expect(list.items).toEqual([]);
    expect(rx.received).toHaveLength(4);
  });

  it("runs a job with --follow to the end, then shows its status and items; refuses out-of-range flags", async () => {
    const done = json<{ job_id: number; status: string; sent: number; failed: number; total: number }>(
      await runHerald(
        [...CREATE, "--aggregate-ids", "c-1,c-2,c-3,o-1", "--batch-size", "2", "--follow", "--json"],
        env,
      ),
    );
    expect(done).toMatchObject({ status: "completed", total: 4, sent: 3, failed: 1 });
    await rx.waitFor((r) => r.length >= 7, 30_000, "three re-sent webhooks");
    expect(rx.received.slice(4).map((r) => r.path)).toEqual(["/cli", "/cli", "/cli"]);

    const status = await runHerald(["retrigger", "status", String(done.job_id)], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`job ${done.job_id}: completed — 4 of 4 done`);
    const failed = json<{ items: Array<{ requested_id: string; reason: string }> }>(
      await runHerald(["retrigger", "items", String(done.job_id), "--outcome", "failed", "--json"], env),
    );
    expect(failed.items.map((i) => [i.requested_id, i.reason])).toEqual([["o-1", "other_tenant"]]);

    const cancel = await runHerald(["retrigger", "cancel", String(done.job_id)], env);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain("409");

    const bad = await runHerald([...CREATE, "--aggregate-ids", "c-1", "--batch-size", "0"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("batch_size must be an integer between 1 and 1000; got 0");
  });

  it("following a job that stopped without completing prints its pending IDs and exits non-zero", async () => {
    const job = json<{ job_id: number }>(
      await runHerald(
        [...CREATE, "--aggregate-ids", "c-1,c-2,c-3", "--batch-size", "1", "--delay-ms", "3600000", "--json"],
        env,
      ),
    );
    await eventually(async () => {
      const j = await api<{ sent: number; lease_owner: string | null }>(
        "GET",
        `/v1/retriggers/${job.job_id}`,
      );
      return j.sent === 1 && j.lease_owner === null;
    });
    const cancelled = await runHerald(["retrigger", "cancel", String(job.job_id), "--reason", "enough"], env);
    expect(cancelled.code).toBe(0);
    const followed = await runHerald(["retrigger", "status", String(job.job_id), "--follow"], env);
    expect(followed.code).toBe(3);
    expect(followed.stderr).toMatch(new RegExp(`job ${job.job_id} \\[.*\\] 1/3 \\| sent 1`));
    expect(followed.stdout).toContain("stopped without completing: cancelled");
    expect(followed.stdout).toContain("pending IDs (2):\n  c-2\n  c-3\n");
  });
});
