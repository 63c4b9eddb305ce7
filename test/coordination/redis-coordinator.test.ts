import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  COORDINATION_UNAVAILABLE,
  type ControlMessage,
  type Coordinator,
  drainLockKey,
} from "../../src/coordination/index.ts";
import { createRedisCoordinator } from "../../src/coordination/redis-coordinator.ts";
import { type Backend, message, REDIS_URL, recordingLogger, redisBackend, waitUntil } from "./helpers.ts";

const unavailable = { code: COORDINATION_UNAVAILABLE };

describe("Redis coordinator when Redis is unreachable", () => {
  let down: Coordinator;
  let logger: ReturnType<typeof recordingLogger>;

  beforeEach(() => {
    logger = recordingLogger();
    // Nothing listens on port 1: every connection attempt is refused.
    down = createRedisCoordinator({ url: "redis://127.0.0.1:1", prefix: "herald-test:", logger });
  });

  afterEach(async () => {
    await down.close();
  });

  it("rejects every call with COORDINATION_UNAVAILABLE and reports unhealthy", async () => {
    await expect(down.tryLock(drainLockKey("s"), 15_000)).rejects.toMatchObject(unavailable);
    expect(down.healthy()).toBe(false);
    await expect(down.isLocked(drainLockKey("s"))).rejects.toMatchObject(unavailable);
    await expect(down.refresh({ key: drainLockKey("s"), token: "t" }, 15_000)).rejects.toMatchObject(
      unavailable,
    );
    await expect(down.release({ key: drainLockKey("s"), token: "t" })).rejects.toMatchObject(unavailable);
    await expect(down.publish("control", message("paused", "s"))).rejects.toMatchObject(unavailable);
    await expect(down.subscribe("control", () => {})).rejects.toMatchObject(unavailable);
    expect(down.healthy()).toBe(false);
  });

  it("logs the outage once per connection", async () => {
    await expect(down.tryLock("k", 1000)).rejects.toMatchObject(unavailable);
    const warnings = logger.entries.filter((e) => e.level === "warn" && e.msg?.includes("down"));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2); // one per connection (commands, subscriber)
  });

  it("rejects an invalid URL at creation", () => {
    expect(() => createRedisCoordinator({ url: "not a url" })).toThrow(TypeError);
  });
});

describe.skipIf(!REDIS_URL)("Redis coordinator against a live Redis (REDIS_URL set)", () => {
  let backend: Backend;
  let raw: ReturnType<typeof createClient>;

  beforeEach(async () => {
    raw = createClient({ url: REDIS_URL! });
    await raw.connect();
    backend = redisBackend(REDIS_URL!);
  });

  afterEach(async () => {
    await backend.teardown();
    await raw.close();
  });

  it("stores the lock as SET <prefix><key> <token> with a PX expiry", async () => {
    const c = backend.make();
    const key = drainLockKey("sub_key");
    const lock = await c.tryLock(key, 15_000);
    expect(await raw.get(`${backend.prefix}${key}`)).toBe(lock?.token);
    const pttl = await raw.pTTL(`${backend.prefix}${key}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(15_000);
  });

  it("ignores (and logs) malformed messages on the channel", async () => {
    const logger = recordingLogger();
    const c = backend.make({ logger });
    const got: ControlMessage[] = [];
    await c.subscribe("control", (m) => got.push(m));
    const channel = `${backend.prefix}control`;
    await raw.publish(channel, "not json");
    await raw.publish(channel, JSON.stringify({ type: "exploded", subscription_id: "s", at: "now" }));
    await raw.publish(channel, JSON.stringify([1, 2, 3]));
    const valid = message("paused", "sub_ok");
    await raw.publish(channel, JSON.stringify(valid));
    // Redis delivers one connection's publishes in order: once the valid one is in, the rest were seen.
    await waitUntil(() => got.length === 1, "the valid message");
    expect(got).toEqual([valid]);
    expect(logger.entries.filter((e) => e.level === "warn" && e.msg?.includes("malformed"))).toHaveLength(3);
  });

  it("reconnects after the connections are killed and re-establishes subscriptions", async () => {
    const name = `herald-test-${randomUUID()}`;
    const logger = recordingLogger();
    const c = createRedisCoordinator({ url: REDIS_URL!, prefix: backend.prefix, clientName: name, logger });
    const publisher = backend.make();
    try {
      const got: ControlMessage[] = [];
      await c.subscribe("control", (m) => got.push(m));
      await waitUntil(() => c.healthy(), "the coordinator to be healthy");

      const list = await raw.clientList();
      const ours = list.filter((entry) => entry.name === name || entry.name === `${name}:sub`);
      expect(ours).toHaveLength(2);
      for (const entry of ours) await raw.clientKill({ filter: "ID", id: Number(entry.id) });

      // Locks work again once the command connection is back (calls fail fast meanwhile).
      const lock = await waitUntil(
        () => c.tryLock(drainLockKey("after_reconnect"), 15_000),
        "tryLock to succeed after reconnect",
      );
      expect(lock.key).toBe(drainLockKey("after_reconnect"));

      // The subscription is re-established: keep publishing until one arrives.
      const marker = message("resumed", `sub_${randomUUID()}`);
      await waitUntil(
        async () => {
          await publisher.publish("control", marker).catch(() => {});
          return got.some((m) => m.subscription_id === marker.subscription_id);
        },
        "a message through the re-established subscription",
        { intervalMs: 50 },
      );
      await waitUntil(() => c.healthy(), "healthy() to be true again");
      expect(logger.entries.some((e) => e.level === "warn")).toBe(true);
      expect(logger.entries.some((e) => e.level === "info" && e.msg?.includes("restored"))).toBe(true);
    } finally {
      await c.close();
    }
  });
});
