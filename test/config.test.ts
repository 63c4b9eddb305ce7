import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadSettings } from "../src/config.ts";

/** Runs loadSettings on `env` and returns the ConfigError it must throw. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadSettings(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

/** True when one of the problems names `variable` as the subject of the complaint. */
function names(problems: string[], variable: string): boolean {
  return problems.some((p) => p.startsWith(variable) || p.includes(` ${variable} `));
}

const KEY_A = Buffer.alloc(32, 1).toString("base64");
const KEY_B = Buffer.alloc(32, 2).toString("base64");

describe("loadSettings", () => {
  it("uses the documented defaults when the environment is empty", () => {
    const s = loadSettings({});
    expect(s).toMatchObject({
      databaseUrl: null,
      dataDir: path.resolve("./.herald"),
      redisUrl: null,
      port: 8080,
      host: "127.0.0.1",
      adminToken: null,
      allowPrivateTargets: false,
      pushDrain: true,
      drainLockTtlMs: 15000,
      schedulerIntervalMs: 10000,
      controlRefreshMs: 60000,
      retryScheduleMs: [5000, 30000, 120000, 600000, 1800000, 3600000, 10800000],
      requestTimeoutMs: 15000,
      leaseMs: 30000,
      maxConcurrentPosts: 64,
      maxPendingHardCap: 50000,
      defaultPendingCeiling: 10000,
      defaultDlqCeiling: 1000,
      maxBodyBytes: 1048576,
      maxSubscriptionsPerTenant: 100,
      embeddedWasmOptimize: false,
    });
    // Seven delays: eight attempts.
    expect(s.retryScheduleMs).toHaveLength(7);
  });

  it("derives the lease from the request timeout unless it is set", () => {
    expect(loadSettings({ HERALD_REQUEST_TIMEOUT_MS: "20000" }).leaseMs).toBe(35000);
    expect(loadSettings({ HERALD_REQUEST_TIMEOUT_MS: "20000", HERALD_LEASE_MS: "90000" }).leaseMs).toBe(
      90000,
    );
  });

  it("reads good values", () => {
    const s = loadSettings({
      DATABASE_URL: "postgres://u@db:5432/herald",
      HERALD_ADMIN_TOKEN: "a-long-enough-admin-token",
      HERALD_ENCRYPTION_KEY: `k2:${KEY_B}, k1:${KEY_A}`,
      REDIS_URL: "redis://cache:6379",
      HERALD_PORT: "9090",
      HERALD_HOST: "0.0.0.0",
      HERALD_PUSH_DRAIN: "false",
      HERALD_ALLOW_PRIVATE_TARGETS: "true",
      HERALD_RETRY_SCHEDULE_MS: "100, 200,300",
      DISPATCHER_MAX_PENDING_HARD_CAP: "200000",
      HERALD_DEFAULT_PENDING_CEILING: "150000",
      HERALD_DATA_DIR: "/tmp/somewhere",
      HERALD_EMBEDDED_WASM_OPTIMIZE: "true",
      HERALD_MAX_SUBSCRIPTIONS_PER_TENANT: "2500",
    });
    expect(s).toMatchObject({
      maxSubscriptionsPerTenant: 2500,
      databaseUrl: "postgres://u@db:5432/herald",
      adminToken: "a-long-enough-admin-token",
      redisUrl: "redis://cache:6379",
      port: 9090,
      host: "0.0.0.0",
      pushDrain: false,
      allowPrivateTargets: true,
      retryScheduleMs: [100, 200, 300],
      maxPendingHardCap: 200000,
      defaultPendingCeiling: 150000,
      dataDir: "/tmp/somewhere",
      embeddedWasmOptimize: true,
    });
    // The first key seals, every key opens.
    expect(s.encryptionKeys?.map((k) => [k.kid, k.key.toString("base64")])).toEqual([
      ["k2", KEY_B],
      ["k1", KEY_A],
    ]);
  });

  it("requires HERALD_ENCRYPTION_KEY with DATABASE_URL, and the embedded store does without it", () => {
    const problems = problemsOf({
      DATABASE_URL: "postgres://u@db:5432/herald",
      HERALD_ADMIN_TOKEN: "a-long-enough-admin-token",
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^HERALD_ENCRYPTION_KEY is required when DATABASE_URL is set/);
    expect(loadSettings({}).encryptionKeys).toBeNull();
  });

  it.each([
    ["no key id", KEY_A, "entry 1 must be <key id>:<base64 of 32 bytes>"],
    ["a bad key id", `k.1:${KEY_A}`, 'entry 1: the key id must be 1-32 of A-Z a-z 0-9 _ -; got "k.1"'],
    [
      "a short key",
      `k1:${Buffer.alloc(16).toString("base64")}`,
      'entry 1 (key id "k1"): the key must be 32 bytes',
    ],
    ["a key that is not base64", "k1:not base64!", 'entry 1 (key id "k1"): the key is not base64'],
    ["an id twice", `k1:${KEY_A},k1:${KEY_B}`, 'entry 2: the key id "k1" appears twice'],
    ["an empty second entry", `k1:${KEY_A},`, "entry 2 must be <key id>:<base64 of 32 bytes>"],
  ])("refuses HERALD_ENCRYPTION_KEY with %s, naming the entry and never the key", (_what, value, message) => {
    const problems = problemsOf({ HERALD_ENCRYPTION_KEY: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`HERALD_ENCRYPTION_KEY ${message}`);
    expect(problems[0]).not.toContain(KEY_A);
    expect(problems[0]).not.toContain(KEY_B);
  });

  it("treats empty values as unset", () => {
    expect(loadSettings({ HERALD_PORT: "", HERALD_PUSH_DRAIN: "  " })).toMatchObject({
      port: 8080,
      pushDrain: true,
    });
  });

  it("reports every bad value at once, each by its variable's name", () => {
    const bad: Record<string, string> = {
      HERALD_PORT: "abc",
      HERALD_PUSH_DRAIN: "maybe",
      HERALD_RETRY_SCHEDULE_MS: "5,x",
      DATABASE_URL: "mysql://x",
      REDIS_URL: "not a url",
      HERALD_DEFAULT_PENDING_CEILING: "50001",
      HERALD_DEFAULT_DLQ_CEILING: "99",
      HERALD_MAX_BODY_BYTES: "-1",
      HERALD_LOG_LEVEL: "loud",
    };
    const problems = problemsOf(bad);
    for (const variable of Object.keys(bad)) {
      expect(names(problems, variable), `${variable} in ${JSON.stringify(problems)}`).toBe(true);
    }
    expect(problems.length).toBeGreaterThanOrEqual(Object.keys(bad).length);
  });

  it.each([
    ["HERALD_PORT", { HERALD_PORT: "abc" }, "abc"],
    ["HERALD_PORT", { HERALD_PORT: "70000" }, "70000"],
    ["HERALD_PUSH_DRAIN", { HERALD_PUSH_DRAIN: "maybe" }, "maybe"],
    ["HERALD_EMBEDDED_WASM_OPTIMIZE", { HERALD_EMBEDDED_WASM_OPTIMIZE: "fast" }, "fast"],
    ["HERALD_RETRY_SCHEDULE_MS", { HERALD_RETRY_SCHEDULE_MS: "5,x" }, "x"],
    ["DATABASE_URL", { DATABASE_URL: "mysql://x", HERALD_ADMIN_TOKEN: "a-long-enough-admin-token" }, "mysql"],
    ["HERALD_DEFAULT_PENDING_CEILING", { HERALD_DEFAULT_PENDING_CEILING: "60000" }, "60000"],
    ["HERALD_MAX_SUBSCRIPTIONS_PER_TENANT", { HERALD_MAX_SUBSCRIPTIONS_PER_TENANT: "0" }, "0"],
    ["HERALD_MAX_SUBSCRIPTIONS_PER_TENANT", { HERALD_MAX_SUBSCRIPTIONS_PER_TENANT: "1000001" }, "1000001"],
    ["HERALD_MAX_SUBSCRIPTIONS_PER_TENANT", { HERALD_MAX_SUBSCRIPTIONS_PER_TENANT: "ten" }, "ten"],
  ])("names %s and the value it got (%j)", (variable, env, got) => {
    const problems = problemsOf(env);
    const p = problems.find((m) => m.startsWith(variable));
    expect(p, JSON.stringify(problems)).toBeDefined();
    expect(p).toContain(got);
  });

  it("holds the default pending ceiling to the hard cap, also a lowered cap", () => {
    expect(
      names(problemsOf({ HERALD_DEFAULT_PENDING_CEILING: "50001" }), "HERALD_DEFAULT_PENDING_CEILING"),
    ).toBe(true);
    const lowered = problemsOf({
      DISPATCHER_MAX_PENDING_HARD_CAP: "5000",
      HERALD_DEFAULT_PENDING_CEILING: "5001",
    });
    expect(names(lowered, "HERALD_DEFAULT_PENDING_CEILING"), JSON.stringify(lowered)).toBe(true);
    expect(
      loadSettings({ DISPATCHER_MAX_PENDING_HARD_CAP: "5000", HERALD_DEFAULT_PENDING_CEILING: "5000" })
        .defaultPendingCeiling,
    ).toBe(5000);
  });

  // Regression: an unset default ceiling used to stay at 10000/1000 above a lowered hard cap, so every
  // subscription created without a ceiling was refused with 422.
  it("lowers unset default ceilings to a lowered hard cap", () => {
    const s = loadSettings({ DISPATCHER_MAX_PENDING_HARD_CAP: "500" });
    expect(s.defaultPendingCeiling).toBe(500);
    expect(s.defaultDlqCeiling).toBe(500);
  });

  it("refuses a lease that is not longer than the request timeout", () => {
    const envs: Record<string, string>[] = [
      { HERALD_LEASE_MS: "15000" },
      { HERALD_LEASE_MS: "10000" },
      { HERALD_REQUEST_TIMEOUT_MS: "40000", HERALD_LEASE_MS: "40000" },
    ];
    for (const env of envs) {
      const problems = problemsOf(env);
      expect(names(problems, "HERALD_LEASE_MS"), JSON.stringify(problems)).toBe(true);
    }
  });

  it("requires an admin token with DATABASE_URL, and only then", () => {
    const problems = problemsOf({
      DATABASE_URL: "postgres://u@db/herald",
      HERALD_ENCRYPTION_KEY: `k1:${KEY_A}`,
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("HERALD_ADMIN_TOKEN");
    expect(problems[0]).toContain("DATABASE_URL");
    expect(loadSettings({}).adminToken).toBeNull();
  });

  it("puts every problem in the error message", () => {
    let message = "";
    try {
      loadSettings({ HERALD_PORT: "abc", HERALD_PUSH_DRAIN: "maybe" });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("HERALD_PORT");
    expect(message).toContain("HERALD_PUSH_DRAIN");
  });
});
