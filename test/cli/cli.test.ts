import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMigrations } from "../../src/store/migrate.ts";
import { Child, cliEnv, json, type Run, waitHealthy } from "../support/cli.ts";
import { freePort } from "../support/port.ts";
import { eventually } from "../support/receiver.ts";

const children: Child[] = [];
const tempDirs: string[] = [];

function spawnHerald(args: string[], env: NodeJS.ProcessEnv): Child {
  const c = new Child(args, env);
  children.push(c);
  return c;
}

/** Runs one CLI command to its end. */
function herald(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return spawnHerald(args, env).waitExit(`herald ${args.join(" ")}`);
}

function tempDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-cli-"));
  tempDirs.push(dir);
  return path.join(dir, "data");
}

afterAll(async () => {
  for (const c of children) await c.kill();
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("herald migrate", () => {
  it("applies the schema to a fresh data directory once, then nothing", async () => {
    const env = cliEnv(tempDataDir(), await freePort());
    const first = json<{ applied: string[]; current: number }>(await herald(["migrate", "--json"], env));
    expect(first.applied).toEqual(listMigrations().map((m) => m.name));
    expect(first.current).toBeGreaterThanOrEqual(1);
    const second = json<{ applied: string[]; current: number }>(await herald(["migrate", "--json"], env));
    expect(second).toEqual({ applied: [], current: first.current });
  });
});

describe("herald start on an embedded store", () => {
  let dataDir: string;
  let port: number;
  let env: NodeJS.ProcessEnv;
  let server: Child;

  beforeAll(async () => {
    dataDir = tempDataDir();
    port = await freePort();
    env = cliEnv(dataDir, port);
    server = spawnHerald(["start"], env);
    await waitHealthy(server, port);
  });

  it("keeps a generated admin token in the data directory and prints it at first start", async () => {
    const file = path.join(dataDir, "admin-token");
    expect(fs.existsSync(file)).toBe(true);
    const token = fs.readFileSync(file, "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    await eventually(async () => server.stderr.includes(token), 10_000, "the admin token on stderr");
    expect(server.stdout).not.toContain(token);
  });

  it("creates and lists subscriptions and makes tenant tokens through the CLI", async () => {
    const created = json<{ subscription_id: string; secret: string; tenant_id: string }>(
      await herald(
        [
          "subscriptions",
          "create",
          "--url",
          "http://127.0.0.1:9/x",
          "--event-types",
          "a,b",
          "--tenant",
          "t1",
          "--json",
        ],
        env,
      ),
    );
    expect(created.subscription_id).toEqual(expect.any(String));
    expect(created.secret).toMatch(/^whsec_/);
    expect(created.tenant_id).toBe("t1");

    const list = json<{ items: Array<{ subscription_id: string; tenant_id: string; status: string }> }>(
      await herald(["subscriptions", "list", "--json"], env),
    );
    const listed = list.items.find((s) => s.subscription_id === created.subscription_id);
    expect(listed).toMatchObject({ tenant_id: "t1", status: "active" });
    expect(listed).not.toHaveProperty("secret");

    const got = json<{ subscription_id: string; url: string }>(
      await herald(["subscriptions", "get", created.subscription_id, "--json"], env),
    );
    expect(got).toMatchObject({ subscription_id: created.subscription_id, url: "http://127.0.0.1:9/x" });

    const token = json<{ token: string }>(
      await herald(["tokens", "create", "--tenant", "t1", "--json"], env),
    );
    expect(token.token).toMatch(/^hrd_/);
  });

  it("reports an API error with a non-zero exit", async () => {
    const run = await herald(["subscriptions", "get", "sub_does_not_exist", "--json"], env);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/404/);
  });

  it.each([["start"], ["migrate"]])(
    "refuses a second process (herald %s) on the same data directory, pointing at DATABASE_URL",
    async (verb) => {
      const run = await herald([verb], env);
      expect(run.code).not.toBe(0);
      expect(run.code).not.toBeNull();
      expect(run.stderr).toContain("DATABASE_URL");
      // The first process is unharmed.
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
    },
  );

  it("stops cleanly on SIGTERM, leaves the data directory reusable, and prints the token only once", async () => {
    server.proc.kill("SIGTERM");
    const run = await server.waitExit("herald start after SIGTERM");
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);

    const token = fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim();
    const again = spawnHerald(["start"], env);
    await waitHealthy(again, port);
    const list = json<{ items: Array<{ tenant_id: string }> }>(
      await herald(["subscriptions", "list", "--tenant", "t1", "--json"], env),
    );
    expect(list.items).toHaveLength(1);
    expect(fs.readFileSync(path.join(dataDir, "admin-token"), "utf8").trim()).toBe(token);
    again.proc.kill("SIGTERM");
    const second = await again.waitExit("second herald start after SIGTERM");
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain(token);
  });

  it("starts again on the data directory of a process that was killed outright", async () => {
    const crashed = spawnHerald(["start"], env);
    await waitHealthy(crashed, port);
    crashed.proc.kill("SIGKILL");
    await crashed.waitExit("herald start after SIGKILL");

    const after = spawnHerald(["start"], env);
    await waitHealthy(after, port);
    const list = json<{ items: Array<{ tenant_id: string }> }>(
      await herald(["subscriptions", "list", "--tenant", "t1", "--json"], env),
    );
    expect(list.items).toHaveLength(1);
    after.proc.kill("SIGTERM");
    expect((await after.waitExit("herald start after SIGTERM")).code).toBe(0);
  });

  it("tunes V8 for its one process, and leaves WebAssembly optimised when told to", async () => {
    const tuning = (stdout: string) =>
      stdout
        .split("\n")
        .filter((line) => line.includes("V8 tuned for one process"))
        .map((line) => (JSON.parse(line) as { v8_flags: string[] }).v8_flags);
    for (const [optimize, flags] of [
      ["false", ["--liftoff-only", "--heap-growing-percent=100"]],
      ["true", ["--heap-growing-percent=100"]],
    ] as const) {
      const c = spawnHerald(["start"], {
        ...env,
        HERALD_LOG_LEVEL: "info",
        HERALD_EMBEDDED_WASM_OPTIMIZE: optimize,
      });
      await waitHealthy(c, port);
      c.proc.kill("SIGTERM");
      const run = await c.waitExit(`herald start (HERALD_EMBEDDED_WASM_OPTIMIZE=${optimize}) after SIGTERM`);
      expect(run.code).toBe(0);
      expect(tuning(run.stdout)).toEqual([flags]);
    }
  });
});
