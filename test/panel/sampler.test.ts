import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadSettings, testSettings } from "../../src/config.ts";
import { SAMPLE_RETENTION_MS, Sampler } from "../../src/panel/sampler.ts";
import { NO_HOOKS, type ServiceContext } from "../../src/service/context.ts";
import { CHART_POINTS, sampleSeries } from "../../src/service/samples.ts";
import { createSubscription } from "../../src/service/subscriptions.ts";
import { SecretBox } from "../../src/store/secret-box.ts";
import { eventually } from "../support/receiver.ts";
import { createTestStore, STORE_KINDS, type TestStore } from "../support/store.ts";

const log = pino({ level: "silent" });

describe.each(STORE_KINDS)("the sampler and the charts' series on the %s store", (kind) => {
  let store: TestStore;
  let ctx: ServiceContext;
  beforeAll(async () => {
    store = await createTestStore(kind);
    const settings = testSettings({ allowPrivateTargets: true });
    ctx = {
      db: store.db,
      settings,
      log,
      hooks: NO_HOOKS,
      secrets: new SecretBox(settings.encryptionKeys ?? []),
    };
  });
  afterAll(async () => {
    await store?.dispose();
  });

  const newSub = async (tenant: string) =>
    (
      await createSubscription(
        ctx,
        { kind: "admin" },
        {
          tenant_id: tenant,
          url: "http://127.0.0.1:9/x",
          event_types: ["*"],
        },
      )
    ).subscription.subscription_id;
  const samplesOf = async (id: string) =>
    (
      await store.db.query<{ pending_count: number; dlq_count: number; paused: boolean }>(
        "SELECT pending_count, dlq_count, paused FROM subscription_samples WHERE subscription_id = $1 ORDER BY sampled_at",
        [id],
      )
    ).rows;

  it("writes a sample when a subscription's numbers change, and none while they do not", async () => {
    const id = await newSub("s1");
    const sampler = new Sampler({ db: store.db, intervalMs: 1000, log });
    const first = await sampler.tick();
    expect(first.written).toBeGreaterThanOrEqual(1);
    expect(await samplesOf(id)).toEqual([{ pending_count: 0, dlq_count: 0, paused: false }]);
    // Nothing changed: nothing more is written, in this tick's bin or the next.
    expect((await sampler.tick()).written).toBe(0);
    await store.db.query(
      "UPDATE subscriptions SET pending_count = 7, status = 'paused', pause_reason = 'manual' WHERE subscription_id = $1",
      [id],
    );
    // The change lands in the next one-second bin (polled: no fixed sleep).
    await eventually(async () => (await sampler.tick()).written > 0 || undefined, 10_000, "the next bin");
    expect(await samplesOf(id)).toEqual([
      { pending_count: 0, dlq_count: 0, paused: false },
      { pending_count: 7, dlq_count: 0, paused: true },
    ]);
  });

  it("several samplers racing one tick write it once", async () => {
    const id = await newSub("s2");
    const a = new Sampler({ db: store.db, intervalMs: 3_600_000, log });
    const b = new Sampler({ db: store.db, intervalMs: 3_600_000, log });
    await Promise.all([a.tick(), b.tick(), a.tick()]);
    expect(await samplesOf(id)).toHaveLength(1);
  });

  it("prunes samples older than the retention (48 h)", async () => {
    const id = await newSub("s3");
    await store.db.query(
      `INSERT INTO subscription_samples (subscription_id, sampled_at, pending_count, dlq_count, paused)
       VALUES ($1, now() - $2::double precision * interval '1 millisecond', 1, 0, false),
              ($1, now() - interval '47 hours', 2, 0, false)`,
      [id, SAMPLE_RETENTION_MS + 60_000],
    );
    const r = await new Sampler({ db: store.db, intervalMs: 60_000, log }).tick();
    expect(r.pruned).toBeGreaterThanOrEqual(1);
    expect((await samplesOf(id)).map((s) => s.pending_count)).toEqual([2, 0]);
  });

  it("starts and stops as a component", async () => {
    const id = await newSub("s4");
    const sampler = new Sampler({ db: store.db, intervalMs: 1000, log });
    await sampler.start();
    await eventually(async () => ((await samplesOf(id)).length > 0 ? true : undefined), 10_000, "a sample");
    await sampler.stop();
    await sampler.stop();
  });

  it("turns samples into at most 96 points over the last 24 h: peaks per bucket, values held between samples", async () => {
    const id = await newSub("series");
    const quiet = await newSub("series-quiet");
    await store.db.query("DELETE FROM subscription_samples");
    const at = (hoursAgo: number, pending: number, paused: boolean) =>
      store.db.query(
        `INSERT INTO subscription_samples (subscription_id, sampled_at, pending_count, dlq_count, paused)
         VALUES ($1, now() - $2::double precision * interval '1 hour', $3, $4, $5)`,
        [id, hoursAgo, pending, Math.floor(pending / 10), paused],
      );
    await at(30, 5, false); // before the window: the starting value
    await at(20, 40, false);
    await at(5, 100, true);
    await at(4, 100, true);
    await at(1, 0, false);
    const s = await sampleSeries(ctx, [id, quiet]);
    const points = s.series.get(id)!;
    expect(points).toHaveLength(CHART_POINTS);
    expect(s.to.getTime() - s.from.getTime()).toBe(24 * 3600 * 1000);
    expect(points[0]).toEqual({ pending: 5, dlq: 0, paused: false });
    expect(Math.max(...points.map((p) => p!.pending))).toBe(100);
    // Paused from 5 h ago to 1 h ago: about 4 h of 15-minute buckets.
    const paused = points.filter((p) => p?.paused).length;
    expect(paused).toBeGreaterThanOrEqual(16);
    expect(paused).toBeLessThanOrEqual(18);
    expect(points.at(-1)).toEqual({ pending: 0, dlq: 0, paused: false });
    // No samples at all: no points with data.
    expect(s.series.get(quiet)!.every((p) => p === null)).toBe(true);
  });
});

describe("HERALD_SAMPLE_INTERVAL_MS", () => {
  it("defaults to a minute and is validated", () => {
    expect(loadSettings({}).sampleIntervalMs).toBe(60_000);
    expect(loadSettings({ HERALD_SAMPLE_INTERVAL_MS: "5000" }).sampleIntervalMs).toBe(5000);
    for (const bad of ["soon", "10", "7200000"]) {
      try {
        loadSettings({ HERALD_SAMPLE_INTERVAL_MS: bad });
        expect.unreachable(`accepted ${bad}`);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).problems.join("\n")).toMatch(
          /^HERALD_SAMPLE_INTERVAL_MS must be .*between 1000 and 3600000/m,
        );
      }
    }
  });
});
