import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  COORDINATION_UNAVAILABLE,
  type ControlMessage,
  type Coordinator,
  createCoordinator,
  drainLockKey,
  MAX_QUEUED_IDS,
  subscriptionsOf,
} from "../../src/coordination/index.ts";
import { type Backend, inProcessBackend, message, REDIS_URL, redisBackend, waitUntil } from "./helpers.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A TTL no test outlives: locks taken with it are released by the test, never by expiry. */
const LONG_TTL = 60_000;
/** A TTL short enough to wait out in real time (Redis); in-process just advances its clock. */
const SHORT_TTL = 150;

function contractSuite(name: string, makeBackend: () => Backend): void {
  describe(`Coordinator contract: ${name}`, () => {
    let backend: Backend;
    let a: Coordinator;
    let b: Coordinator;

    beforeEach(() => {
      backend = makeBackend();
      a = backend.make();
      b = backend.make();
    });

    afterEach(async () => {
      await backend.teardown();
    });

    it("reports its kind and is healthy once connected", async () => {
      expect(a.kind).toBe(backend.kind);
      await waitUntil(() => a.healthy() && b.healthy(), "coordinators to become healthy");
    });

    it("tryLock grants an exclusive lock with a random token", async () => {
      const key = drainLockKey("sub_1");
      const lock = await a.tryLock(key, LONG_TTL);
      expect(lock).not.toBeNull();
      expect(lock?.key).toBe(key);
      expect(lock?.token).toMatch(UUID);
      expect(await a.isLocked(key)).toBe(true);
      expect(await b.isLocked(key)).toBe(true);
    });

    it("a second tryLock gets null while the lock is held, from any coordinator", async () => {
      const key = drainLockKey("sub_2");
      const first = await a.tryLock(key, LONG_TTL);
      expect(first).not.toBeNull();
      expect(await a.tryLock(key, LONG_TTL)).toBeNull();
      expect(await b.tryLock(key, LONG_TTL)).toBeNull();
    });

    it("only one of many concurrent tryLocks wins", async () => {
      const key = drainLockKey("sub_race");
      const attempts = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).tryLock(key, LONG_TTL)),
      );
      expect(attempts.filter((l) => l !== null)).toHaveLength(1);
    });

    it("locks on different keys are independent", async () => {
      expect(await a.tryLock(drainLockKey("x"), LONG_TTL)).not.toBeNull();
      expect(await b.tryLock(drainLockKey("y"), LONG_TTL)).not.toBeNull();
      expect(await a.isLocked(drainLockKey("z"))).toBe(false);
    });

    it("an expired lock is free again", async () => {
      const key = drainLockKey("sub_expire");
      expect(await a.tryLock(key, SHORT_TTL)).not.toBeNull();
      await backend.expire(key, SHORT_TTL);
      expect(await a.isLocked(key)).toBe(false);
      const next = await b.tryLock(key, LONG_TTL);
      expect(next).not.toBeNull();
    });

    it("refresh by the owner extends the lock", async () => {
      const key = drainLockKey("sub_refresh");
      const lock = await a.tryLock(key, SHORT_TTL);
      expect(lock).not.toBeNull();
      expect(await a.refresh(lock!, LONG_TTL)).toBe(true);
      const remaining = await backend.pttl(key);
      expect(remaining).toBeGreaterThan(SHORT_TTL);
      expect(remaining).toBeLessThanOrEqual(LONG_TTL);
      // The refreshed lock still belongs to its owner.
      expect(await b.tryLock(key, LONG_TTL)).toBeNull();
      expect(await a.release(lock!)).toBe(true);
    });

    it("refresh with a stale token fails and does not extend the new owner's lock", async () => {
      const key = drainLockKey("sub_stale");
      const stale = await a.tryLock(key, SHORT_TTL);
      expect(stale).not.toBeNull();
      await backend.expire(key, SHORT_TTL);
      const current = await b.tryLock(key, 10_000);
      expect(current).not.toBeNull();
      expect(current?.token).not.toBe(stale?.token);

      expect(await a.refresh(stale!, LONG_TTL)).toBe(false);
      const remaining = await backend.pttl(key);
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThanOrEqual(10_000);

      expect(await b.refresh(current!, LONG_TTL)).toBe(true);
    });

    it("release by a non-owner does not delete the lock", async () => {
      const key = drainLockKey("sub_release");
      const stale = await a.tryLock(key, SHORT_TTL);
      await backend.expire(key, SHORT_TTL);
      const current = await b.tryLock(key, LONG_TTL);
      expect(current).not.toBeNull();

      expect(await a.release(stale!)).toBe(false);
      expect(await a.release({ key, token: "not-the-token" })).toBe(false);
      expect(await a.isLocked(key)).toBe(true);
      expect(await a.tryLock(key, LONG_TTL)).toBeNull();

      expect(await b.release(current!)).toBe(true);
      expect(await a.isLocked(key)).toBe(false);
    });

    it("release by the owner frees the lock exactly once", async () => {
      const key = drainLockKey("sub_once");
      const lock = await a.tryLock(key, LONG_TTL);
      expect(await a.release(lock!)).toBe(true);
      expect(await a.release(lock!)).toBe(false);
      expect(await a.refresh(lock!, LONG_TTL)).toBe(false);
      expect(await a.isLocked(key)).toBe(false);
      expect(await b.tryLock(key, LONG_TTL)).not.toBeNull();
    });

    it("a lock handle works on another coordinator of the same backend", async () => {
      const key = drainLockKey("sub_handoff");
      const lock = await a.tryLock(key, LONG_TTL);
      expect(await b.refresh(lock!, LONG_TTL)).toBe(true);
      expect(await b.release(lock!)).toBe(true);
      expect(await a.isLocked(key)).toBe(false);
    });

    it("rejects invalid TTLs and keys", async () => {
      for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(a.tryLock("k", ttl)).rejects.toBeInstanceOf(RangeError);
      }
      await expect(a.tryLock("", LONG_TTL)).rejects.toBeInstanceOf(TypeError);
      const lock = await a.tryLock("k", LONG_TTL);
      await expect(a.refresh(lock!, 0)).rejects.toBeInstanceOf(RangeError);
      expect(await a.isLocked("k")).toBe(true);
    });

    it("publish delivers to every subscriber, and unsubscribe stops delivery", async () => {
      const got: Record<string, ControlMessage[]> = { a1: [], a2: [], b1: [] };
      const unsubA1 = await a.subscribe("control", (m) => got.a1!.push(m));
      await a.subscribe("control", (m) => got.a2!.push(m));
      await b.subscribe("control", (m) => got.b1!.push(m));
      const publisher = backend.make();

      const first = message("paused", "sub_1", "test-publisher");
      await publisher.publish("control", first);
      await waitUntil(
        () => got.a1!.length === 1 && got.a2!.length === 1 && got.b1!.length === 1,
        "the first message at all three handlers",
      );
      expect(got.a1).toEqual([first]);
      expect(got.a2).toEqual([first]);
      expect(got.b1).toEqual([first]);

      await unsubA1();
      await unsubA1(); // idempotent
      const second = message("resumed", "sub_1");
      await publisher.publish("control", second);
      // a2 shares a1's coordinator and channel, so once a2 has it, a1 would have had it too.
      await waitUntil(() => got.a2!.length === 2 && got.b1!.length === 2, "the second message");
      expect(got.a2).toEqual([first, second]);
      expect(got.b1).toEqual([first, second]);
      expect(got.a1).toEqual([first]);
    });

    it("concurrent subscribe and unsubscribe on one channel keep the new handler subscribed", async () => {
      const first: ControlMessage[] = [];
      const second: ControlMessage[] = [];
      const third: ControlMessage[] = [];
      const unsubscribeFirst = await a.subscribe("control", (m) => first.push(m));
      // Subscribe while the channel's only handler is leaving.
      const pending = a.subscribe("control", (m) => second.push(m));
      await unsubscribeFirst();
      await pending;
      // Two subscribes racing on a fresh channel both get through.
      await Promise.all([
        a.subscribe("fresh", (m) => third.push(m)),
        a.subscribe("fresh", (m) => third.push(m)),
      ]);
      await b.publish("control", message("paused", "sub_4"));
      await b.publish("fresh", message("resumed", "sub_4"));
      await waitUntil(() => second.length === 1 && third.length === 2, "delivery to the remaining handlers");
      expect(first).toHaveLength(0);
    });

    it("messages stay on their channel", async () => {
      const control: ControlMessage[] = [];
      const other: ControlMessage[] = [];
      await a.subscribe("control", (m) => control.push(m));
      await a.subscribe("other", (m) => other.push(m));
      await b.publish("other", message("deleted", "sub_9"));
      await b.publish("control", message("updated", "sub_9"));
      await waitUntil(() => control.length === 1 && other.length === 1, "one message on each channel");
      expect(control[0]?.type).toBe("updated");
      expect(other[0]?.type).toBe("deleted");
    });

    it("a throwing handler does not stop delivery to the others", async () => {
      const got: ControlMessage[] = [];
      await a.subscribe("control", () => {
        throw new Error("handler bug");
      });
      await a.subscribe("control", async () => {
        throw new Error("async handler bug");
      });
      await a.subscribe("control", (m) => got.push(m));
      await b.publish("control", message("paused", "sub_3"));
      await waitUntil(() => got.length === 1, "delivery to the healthy handler");
    });

    it("publish rejects a malformed message", async () => {
      const bad = { type: "exploded", subscription_id: "s", at: new Date().toISOString() };
      await expect(a.publish("control", bad as unknown as ControlMessage)).rejects.toBeInstanceOf(TypeError);
      const noId = { type: "paused", at: new Date().toISOString() };
      await expect(a.publish("control", noId as unknown as ControlMessage)).rejects.toBeInstanceOf(TypeError);
      // Many subscriptions: `queued` only, subscription_id first, at most MAX_QUEUED_IDS.
      const at = new Date().toISOString();
      const malformed: ControlMessage[] = [
        { type: "paused", subscription_id: "s1", subscription_ids: ["s1", "s2"], at },
        { type: "queued", subscription_id: "s2", subscription_ids: ["s1", "s2"], at },
        { type: "queued", subscription_id: "s1", subscription_ids: [], at },
        { type: "queued", subscription_id: "s1", subscription_ids: ["s1", ""], at },
        {
          type: "queued",
          subscription_id: "s0",
          subscription_ids: Array.from({ length: MAX_QUEUED_IDS + 1 }, (_, i) => `s${i}`),
          at,
        },
      ];
      for (const m of malformed) await expect(a.publish("control", m)).rejects.toBeInstanceOf(TypeError);
    });

    it("one queued message names many subscriptions", async () => {
      const got: ControlMessage[] = [];
      await a.subscribe("control", (m) => got.push(m));
      const ids = Array.from({ length: MAX_QUEUED_IDS }, (_, i) => `sub_q${i}`);
      const queued: ControlMessage = {
        type: "queued",
        subscription_id: ids[0]!,
        subscription_ids: ids,
        at: new Date().toISOString(),
      };
      await b.publish("control", queued);
      await waitUntil(() => got.length === 1, "the queued message");
      expect(got[0]).toEqual(queued);
      expect(subscriptionsOf(got[0]!)).toEqual(ids);
      expect(subscriptionsOf(message("paused", "sub_p"))).toEqual(["sub_p"]);
    });

    it("lockedAmong names, in one call, the keys somebody holds", async () => {
      const [x, y, z] = [drainLockKey("many_x"), drainLockKey("many_y"), drainLockKey("many_z")];
      const lockX = await a.tryLock(x, LONG_TTL);
      expect(lockX).not.toBeNull();
      expect(await b.tryLock(y, SHORT_TTL)).not.toBeNull();
      expect(await b.lockedAmong([x, y, z])).toEqual(new Set([x, y]));
      await backend.expire(y, SHORT_TTL);
      expect(await a.release(lockX!)).toBe(true);
      expect(await a.lockedAmong([x, y, z])).toEqual(new Set());
      expect(await a.lockedAmong([])).toEqual(new Set());
      await expect(a.lockedAmong([""])).rejects.toBeInstanceOf(TypeError);
    });

    it("after close, calls reject with COORDINATION_UNAVAILABLE and healthy() is false", async () => {
      await a.close();
      await a.close(); // idempotent
      expect(a.healthy()).toBe(false);
      await expect(a.tryLock("k", LONG_TTL)).rejects.toMatchObject({ code: COORDINATION_UNAVAILABLE });
      await expect(a.publish("control", message("paused", "s"))).rejects.toMatchObject({
        code: COORDINATION_UNAVAILABLE,
      });
      // The backend and the other coordinators carry on.
      expect(await b.tryLock("k", LONG_TTL)).not.toBeNull();
    });
  });
}

contractSuite("in-process", inProcessBackend);

describe.skipIf(!REDIS_URL)("Redis (REDIS_URL set)", () => {
  contractSuite("redis", () => redisBackend(REDIS_URL!));
});

describe("createCoordinator", () => {
  it("is in-process without a Redis URL", async () => {
    const c = await createCoordinator({});
    expect(c.kind).toBe("in-process");
    await c.close();
    const blank = await createCoordinator({ redisUrl: "  " });
    expect(blank.kind).toBe("in-process");
    await blank.close();
  });

  it("is Redis with a Redis URL", async () => {
    const c = await createCoordinator({ redisUrl: "redis://127.0.0.1:1", prefix: "herald-test:" });
    expect(c.kind).toBe("redis");
    await c.close();
  });
});
