import { describe, expect, it } from "vitest";
import {
  type ControlMessage,
  createInProcessCoordinator,
  drainLockKey,
  InProcessHub,
} from "../../src/coordination/index.ts";
import { message, waitUntil } from "./helpers.ts";

describe("in-process coordinator", () => {
  it("expires locks by the injected clock, exactly at the TTL", async () => {
    let now = 1_000;
    const c = createInProcessCoordinator({ now: () => now });
    const key = drainLockKey("s");
    const lock = await c.tryLock(key, 15_000);
    now += 14_999;
    expect(await c.isLocked(key)).toBe(true);
    expect(await c.tryLock(key, 15_000)).toBeNull();
    now += 1;
    expect(await c.isLocked(key)).toBe(false);
    expect(await c.refresh(lock!, 15_000)).toBe(false);
    await c.close();
  });

  it("refresh moves the expiry to ttl from now", async () => {
    let now = 0;
    const c = createInProcessCoordinator({ now: () => now });
    const key = drainLockKey("s");
    const lock = await c.tryLock(key, 1_000);
    now = 800;
    expect(await c.refresh(lock!, 1_000)).toBe(true);
    now = 1_500; // past the original expiry, before the refreshed one (1,800)
    expect(await c.isLocked(key)).toBe(true);
    now = 1_800;
    expect(await c.isLocked(key)).toBe(false);
    await c.close();
  });

  it("delivers asynchronously, never inside publish", async () => {
    const c = createInProcessCoordinator();
    const got: ControlMessage[] = [];
    await c.subscribe("control", (m) => got.push(m));
    const published = c.publish("control", message("paused", "s"));
    expect(got).toHaveLength(0);
    await published;
    await waitUntil(() => got.length === 1, "the message");
    await c.close();
  });

  it("does not deliver a message queued before unsubscribe", async () => {
    const c = createInProcessCoordinator();
    const got: ControlMessage[] = [];
    const witness: ControlMessage[] = [];
    const unsubscribe = await c.subscribe("control", (m) => got.push(m));
    await c.subscribe("control", (m) => witness.push(m));
    await c.publish("control", message("paused", "s"));
    await unsubscribe();
    await waitUntil(() => witness.length === 1, "the witness to receive the message");
    expect(got).toHaveLength(0);
    await c.close();
  });

  it("gives each handler its own copy of the message", async () => {
    const c = createInProcessCoordinator();
    const got: ControlMessage[] = [];
    await c.subscribe("control", (m) => {
      m.subscription_id = "mutated";
      got.push(m);
    });
    await c.subscribe("control", (m) => got.push(m));
    const sent = message("updated", "s");
    await c.publish("control", sent);
    await waitUntil(() => got.length === 2, "both handlers");
    expect(sent.subscription_id).toBe("s");
    expect(got.map((m) => m.subscription_id).sort()).toEqual(["mutated", "s"]);
    await c.close();
  });

  it("keeps prefixes apart on a shared hub", async () => {
    const hub = new InProcessHub();
    const one = createInProcessCoordinator({ hub, prefix: "one:" });
    const two = createInProcessCoordinator({ hub, prefix: "two:" });
    expect(await one.tryLock("k", 1_000)).not.toBeNull();
    expect(await two.tryLock("k", 1_000)).not.toBeNull();
    await Promise.all([one.close(), two.close()]);
  });

  it("close stops delivery to its handlers", async () => {
    const hub = new InProcessHub();
    const closing = createInProcessCoordinator({ hub });
    const staying = createInProcessCoordinator({ hub });
    const closed: ControlMessage[] = [];
    const open: ControlMessage[] = [];
    await closing.subscribe("control", (m) => closed.push(m));
    await staying.subscribe("control", (m) => open.push(m));
    await closing.close();
    await staying.publish("control", message("deleted", "s"));
    await waitUntil(() => open.length === 1, "the open subscriber");
    expect(closed).toHaveLength(0);
    await staying.close();
  });

  it("refuses both a hub and a clock", () => {
    expect(() => createInProcessCoordinator({ hub: new InProcessHub(), now: Date.now })).toThrow(TypeError);
  });
});
