import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testSettings } from "../../src/config.ts";
import { type HeraldProcess, startHerald } from "../../src/runtime/herald.ts";
import { StoreError } from "../../src/store/db-error.ts";
import { ADMIN } from "../support/herald.ts";
import { createTestStore, STORE_KINDS, type TestStore } from "../support/store.ts";

/**
 * A database error is logged as a bounded summary (issue 18, item 6): never the statement's parameters
 * (PGlite attaches them to its errors), never a row (PostgreSQL's "Failing row contains (…)" detail).
 * Both stores are made to refuse every new event and subscription with a CHECK constraint, so that the
 * failing statements carry a large payload and a sealed secret.
 */

const MARKER = "PAYLOAD-MARKER";
/** Longest log line allowed: a summary, not a payload. */
const LINE_LIMIT = 4096;

describe.each(STORE_KINDS)("database errors in the log on the %s store", (kind) => {
  let store: TestStore;
  let proc: HeraldProcess;
  const lines: string[] = [];
  beforeAll(async () => {
    store = await createTestStore(kind);
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    proc = await startHerald(
      testSettings({ port: 0, host: "127.0.0.1", adminToken: ADMIN, allowPrivateTargets: true }),
      {
        roles: { api: true, dispatcher: false },
        db: store.db,
        migrate: false,
        logger: pino({ level: "info" }, sink),
      },
    );
    await store.db.exec(
      "ALTER TABLE events ADD CONSTRAINT refuse_events CHECK (false) NOT VALID; ALTER TABLE subscriptions ADD CONSTRAINT refuse_subscriptions CHECK (false) NOT VALID",
    );
  });
  afterAll(async () => {
    await proc?.stop();
    await store?.dispose();
  });

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${proc.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };

  it("logs a failed 900 KB batch and a failed subscription without their parameters, payloads or secrets", async () => {
    const big = `${MARKER}${"x".repeat(300_000)}`;
    const batch = await post("/v1/events/batch", {
      events: [0, 1, 2].map((i) => ({ tenant_id: "t", event_type: "x.y", payload: { i, big } })),
    });
    const single = await post("/v1/events", { tenant_id: "t", event_type: "x.y", payload: { big } });
    const sub = await post("/v1/subscriptions", {
      tenant_id: "t",
      url: "http://127.0.0.1:9/hook",
      event_types: ["*"],
    });
    for (const r of [batch, single, sub]) {
      expect(r.status).toBe(500);
      expect(r.text).not.toContain(MARKER);
    }

    const failures = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: Record<string, unknown> })
      .filter((l) => l.level >= 50);
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const f of failures) {
      expect(f.err).toMatchObject({ type: "StoreError", code: "23514" });
      expect(f.err).not.toHaveProperty("params");
      expect(f.err).not.toHaveProperty("detail");
    }
    for (const line of lines) {
      expect(line.length).toBeLessThan(LINE_LIMIT);
      expect(line).not.toContain(MARKER);
      expect(line).not.toContain("whsec_");
      expect(line).not.toContain("enc:v1:");
    }
  });

  it("throws a StoreError naming the statement, with a bounded message, for named and unnamed statements alike", async () => {
    const secret = "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3QtYmUtbG9nZ2Vk";
    const long = `${MARKER}${"y".repeat(100_000)}`;
    for (const name of [undefined, "herald_test_failing"]) {
      const err = await store.db
        .query(
          "SELECT $1::text || $2::text AS v, (1 / (length($3::text) - length($3::text))) AS boom",
          [secret, long, long],
          name ? { name } : {},
        )
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(StoreError);
      const e = err as StoreError;
      expect(e.code).toBe("22012");
      if (name) expect(e.statement).toBe(name);
      else expect(e.statement).toMatch(/^SELECT \$1::text \|\| \$2::text AS v, .{40,} \(\d+ characters\)$/);
      const logged = JSON.stringify(pino.stdSerializers.err(e));
      expect(logged.length).toBeLessThan(LINE_LIMIT);
      expect(logged).not.toContain(MARKER);
      expect(logged).not.toContain("whsec_");
    }
    // A bad input value quoted by PostgreSQL's message is cut short.
    const quoted = await store.db.query("SELECT $1::bigint AS n", [`${MARKER}${"z".repeat(10_000)}`]).then(
      () => null,
      (e: unknown) => e as StoreError,
    );
    expect(quoted?.code).toBe("22P02");
    expect(quoted?.message).toContain(MARKER);
    expect(quoted?.message.length).toBeLessThan(400);
  });
});
