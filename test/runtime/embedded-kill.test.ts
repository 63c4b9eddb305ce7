import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Child, cliEnv, waitHealthy } from "../support/cli.ts";
import { freePort } from "../support/port.ts";
import { eventually, Receiver } from "../support/receiver.ts";

const children: Child[] = [];
let dir = "";
let rx: Receiver | null = null;

afterAll(async () => {
  for (const c of children) await c.kill();
  await rx?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("herald start on the embedded store, killed outright", () => {
  it("sends nothing again that it had recorded as delivered", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-kill-"));
    const port = await freePort();
    const env = cliEnv(path.join(dir, "data"), port);
    const start = async () => {
      const c = new Child(["start"], env);
      children.push(c);
      await waitHealthy(c, port);
      return c;
    };
    const first = await start();
    const token = fs.readFileSync(path.join(dir, "data", "admin-token"), "utf8").trim();
    const api = async <T>(method: string, p: string, body?: unknown) => {
      const res = await fetch(`http://127.0.0.1:${port}${p}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return (await res.json()) as T;
    };
    rx = await new Receiver().start();
    const sub = await api<{ subscription_id: string; secret: string }>("POST", "/v1/subscriptions", {
      tenant_id: "k",
      url: rx.url(),
      event_types: ["*"],
      ordering: "unordered",
      max_in_flight: 50,
    });
    rx.trust(sub.secret);
    const events = Array.from({ length: 100 }, (_, n) => ({
      tenant_id: "k",
      event_type: "x",
      payload: { n },
    }));
    await api("POST", "/v1/events/batch", { events });
    await rx.waitFor((r) => r.length === 100, 60_000, "the 100 deliveries");
    // Every result recorded (the API reads the store): the kill finds nothing in flight.
    await eventually(async () => {
      const s = await api<{ pending_count: number }>("GET", `/v1/subscriptions/${sub.subscription_id}`);
      return s.pending_count === 0 ? true : undefined;
    }, 60_000);
    first.proc.kill("SIGKILL");
    await first.waitExit("herald start after SIGKILL");

    await start();
    await api("POST", "/v1/events", { tenant_id: "k", event_type: "x", payload: { n: 100 } });
    await rx.waitFor(
      (r) => r.some((x) => (x.body.data as { n: number }).n === 100),
      60_000,
      "the next event",
    );
    // The queue empty again: the restart's recovery pass and the claims after it are done, and anything
    // sent again has arrived.
    await eventually(async () => {
      const s = await api<{ pending_count: number }>("GET", `/v1/subscriptions/${sub.subscription_id}`);
      return s.pending_count === 0 ? true : undefined;
    }, 60_000);
    const ids = rx.received.map((r) => r.webhookId);
    expect(ids).toHaveLength(101);
    expect(new Set(ids).size).toBe(101);
  });
});
