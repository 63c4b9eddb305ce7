import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateSecret } from "../../src/http/signing.ts";
import { resealSecrets } from "../../src/store/reseal.ts";
import { type EncryptionKey, newEncryptionKey, SecretBox } from "../../src/store/secret-box.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { Receiver } from "../support/receiver.ts";
import { createTestStore, STORE_KINDS, type TestStore } from "../support/store.ts";

/**
 * Signing secrets at rest (issue 18, item 7): sealed with AES-256-GCM under the first key of the ring,
 * opened where the dispatcher signs, sealed again at start when stored in plain text or under an older
 * key, and absent from a pg_dump. The embedded store's files are scanned in data-dir-modes.test.ts.
 */

interface Created {
  subscription_id: string;
  secret: string;
}
interface StoredSecret {
  subscription_id: string;
  secret: string;
  previous_secret: string | null;
}

const stored = async (db: TestStore["db"], tenant: string) =>
  (
    await db.query<StoredSecret>(
      "SELECT subscription_id, secret, previous_secret FROM subscriptions WHERE tenant_id = $1 ORDER BY subscription_id",
      [tenant],
    )
  ).rows;

describe.each(STORE_KINDS)("signing secrets at rest on the %s store", (kind) => {
  let h: TestHerald;
  let rx: Receiver | null = null;
  beforeAll(async () => {
    h = await startTestHerald(
      kind,
      { retryScheduleMs: [100], schedulerIntervalMs: 200 },
      { api: true, dispatcher: true },
    );
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(async () => {
    await rx?.close();
    rx = null;
  });

  it("stores every secret sealed, signs with the secrets it handed out (both during a rotation), and a pg_dump holds none", async () => {
    const receiver = await new Receiver().start();
    rx = receiver;
    const subs: Created[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await h.api<Created>("POST", "/v1/subscriptions", {
        tenant_id: "sealed",
        url: receiver.url(`/s${i}`),
        event_types: ["*"],
      });
      expect(r.status).toBe(201);
      subs.push(r.body);
    }
    const first = subs[0]!;
    const rotated = await h.api<{ secret: string }>(
      "POST",
      `/v1/subscriptions/${first.subscription_id}/rotate-secret`,
      {
        overlap_seconds: 3600,
      },
    );
    expect(rotated.status).toBe(200);

    const rows = await stored(h.store.db, "sealed");
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.secret).toMatch(/^enc:v1:test:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]+$/);
      expect(row.secret).not.toContain("whsec_");
    }
    const firstRow = rows.find((r) => r.subscription_id === first.subscription_id)!;
    expect(firstRow.previous_secret).toMatch(/^enc:v1:test:/);
    expect(h.proc.secrets.open(firstRow.secret)).toBe(rotated.body.secret);
    expect(h.proc.secrets.open(firstRow.previous_secret!)).toBe(first.secret);

    // The current secrets sign; during the rotation the old one still verifies on its own.
    receiver.trust(rotated.body.secret);
    for (const s of subs.slice(1)) receiver.trust(s.secret);
    const e = await h.api("POST", "/v1/events", {
      tenant_id: "sealed",
      event_type: "x.y",
      payload: { n: 1 },
    });
    expect(e.status).toBe(202);
    await receiver.waitFor((r) => r.length === 3, 30_000, "three deliveries");
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    const toFirst = receiver.received.find((r) => r.path === "/s0")!;
    expect(() =>
      new Webhook(first.secret).verify(toFirst.rawBody, {
        "webhook-id": toFirst.webhookId,
        "webhook-timestamp": toFirst.timestamp,
        "webhook-signature": toFirst.signature,
      }),
    ).not.toThrow();

    if (kind === "postgres") {
      const schema = (await h.store.db.query<{ s: string }>("SELECT current_schema() AS s")).rows[0]!.s;
      const { stdout } = await promisify(execFile)(
        "pg_dump",
        ["--schema", schema, "--dbname", process.env.DATABASE_URL ?? ""],
        { maxBuffer: 256 * 1024 * 1024 },
      );
      expect(stdout).toContain("enc:v1:test:");
      expect(stdout).not.toContain("whsec_");
      for (const s of [...subs.map((x) => x.secret), rotated.body.secret]) {
        expect(stdout).not.toContain(s.slice("whsec_".length));
      }
    }
  });
});

describe.each(STORE_KINDS)("sealing again at start on the %s store", (kind) => {
  let store: TestStore;
  let h: TestHerald | null = null;
  const older = newEncryptionKey("older");
  const newer = newEncryptionKey("newer");
  beforeAll(async () => {
    store = await createTestStore(kind);
  });
  afterAll(async () => {
    await h?.close();
    await store?.dispose();
  });

  const insert = (id: string, tenant: string, secret: string, previous: string | null) =>
    store.db.query(
      `INSERT INTO subscriptions (subscription_id, tenant_id, url, event_types, ordering, pending_ceiling,
         dlq_ceiling, max_in_flight, secret, previous_secret, previous_secret_expires_at)
       VALUES ($1, $2, $3, '{*}', 'unordered', 1000, 100, 10, $4, $5, now() + interval '1 hour')`,
      [id, tenant, "http://127.0.0.1:9/hook", secret, previous],
    );

  it("seals rows stored in plain text or under an older key, once, with processes starting at once, and signs with them after", {
    timeout: 120_000,
  }, async () => {
    const plain = generateSecret();
    const plainPrevious = generateSecret();
    const underOlder = generateSecret();
    await insert("sub_plain", "reseal", plain, plainPrevious);
    await insert("sub_older", "reseal", new SecretBox([older]).seal(underOlder), null);
    const ring: EncryptionKey[] = [newer, older];

    // Two processes' passes at once (PostgreSQL: two connection pools): each row sealed exactly once.
    const other = (await store.connectAgain()) ?? store.db;
    const [a, b] = await Promise.all([
      resealSecrets(store.db, new SecretBox(ring)),
      resealSecrets(other, new SecretBox(ring)),
    ]);
    expect(a.resealed + b.resealed).toBe(2);
    const rows = await stored(store.db, "reseal");
    const box = new SecretBox(ring);
    for (const r of rows) expect(r.secret.startsWith("enc:v1:newer:")).toBe(true);
    const byId = new Map(rows.map((r) => [r.subscription_id, r]));
    expect(box.open(byId.get("sub_plain")!.secret)).toBe(plain);
    expect(byId.get("sub_plain")!.previous_secret).toMatch(/^enc:v1:newer:/);
    expect(box.open(byId.get("sub_plain")!.previous_secret!)).toBe(plainPrevious);
    expect(box.open(byId.get("sub_older")!.secret)).toBe(underOlder);
    const audit = await store.db.query<{ subscription_id: string; actor: string; after: unknown }>(
      "SELECT subscription_id, actor, after FROM audit_log WHERE action = 'subscription.secret_resealed' ORDER BY subscription_id",
    );
    expect(audit.rows).toEqual([
      { subscription_id: "sub_older", actor: "system", after: { key_id: "newer" } },
      { subscription_id: "sub_plain", actor: "system", after: { key_id: "newer" } },
    ]);

    // A process starting on the same ring finds nothing to do, and signs with the original secrets.
    const receiver = await new Receiver().start();
    try {
      await store.db.query("UPDATE subscriptions SET url = $1 WHERE tenant_id = 'reseal'", [receiver.url()]);
      h = await startTestHerald(
        kind,
        { encryptionKeys: ring, retryScheduleMs: [100], schedulerIntervalMs: 200 },
        { api: true, dispatcher: true },
        store,
      );
      expect(await resealSecrets(store.db, box)).toEqual({ resealed: 0 });
      receiver.trust(plain);
      receiver.trust(underOlder);
      const e = await h.api("POST", "/v1/events", { tenant_id: "reseal", event_type: "x.y", payload: {} });
      expect(e.status).toBe(202);
      await receiver.waitFor((r) => r.length === 2, 30_000, "two deliveries");
      expect(receiver.received.every((r) => r.verified)).toBe(true);
      const again = await store.db.query(
        "SELECT 1 FROM audit_log WHERE action = 'subscription.secret_resealed'",
      );
      expect(again.rowCount).toBe(2);
    } finally {
      await receiver.close();
    }
  });

  it("refuses to start when a stored secret is sealed under a key id the ring does not hold, naming it", async () => {
    await insert(
      "sub_gone",
      "gone",
      new SecretBox([newEncryptionKey("retired")]).seal(generateSecret()),
      null,
    );
    await expect(
      startTestHerald(
        kind,
        { encryptionKeys: [newEncryptionKey("fresh"), newer] },
        { api: true, dispatcher: false },
        store,
      ),
    ).rejects.toThrow(/key id "retired", which HERALD_ENCRYPTION_KEY does not hold/);
  });
});
