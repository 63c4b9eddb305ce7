import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { TEST_ENCRYPTION_KEY } from "../../src/config.ts";
import { parseIdsFile } from "../../src/domain/retrigger.ts";
import { ADMIN, type TestHerald } from "../support/herald.ts";
import { eventually, Gate, type Received, type Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";
import {
  type Audit,
  allItems,
  contractOf,
  emit,
  getJob,
  type Job,
  type Preview,
  retriggerSettings,
  rowCounts,
  subscribe,
  TYPE,
  testRunner,
  useHeraldAndReceiver,
  waitJob,
} from "./helpers.ts";

// Short leases so that a dead chunk owner's job comes back within seconds. The request timeout leaves room
// for the embedded store: PGlite runs on this process's event loop (as does the receiver), which stalls
// for up to a few seconds under load; a 1 s timeout turned such stalls into failed attempts and DLQ rows.
const SETTINGS = retriggerSettings(5000, 6000);

const pad = (i: number) => `c-${String(i).padStart(3, "0")}`;

/**
 * A chunk runner that dies right before its item number `dieAt` (counting from 1): the test kills it
 * there, without any cleanup. Items are committed in groups (src/service/retrigger.ts,
 * ITEMS_PER_TRANSACTION), and the group being formed when it dies is not: fewer than dieAt items were
 * done, whole groups only, and every other item is still pending.
 */
async function doomedRunner(h: TestHerald, dieAt: number) {
  const reached = new Gate();
  const release = new Gate();
  let calls = 0;
  const runner = await testRunner(h, {
    owner: "doomed-dispatcher",
    beforeItem: async () => {
      calls += 1;
      if (calls === dieAt) {
        reached.open();
        await release.opened;
      }
    },
  });
  return {
    runner,
    /** Waits until it is about to start item `dieAt`, then kills it there. */
    async killAtItem() {
      await reached.opened;
      const killing = runner.kill();
      release.open();
      await killing;
    },
  };
}

/**
 * Waits until `fresh()` holds one distinct webhook-id per aggregate of `aggregates`, then checks that they
 * are exactly that: every aggregate, each with one webhook-id (every request first passed to `check`).
 */
async function expectOneWebhookPerAggregate(
  rx: Receiver,
  fresh: () => Received[],
  aggregates: readonly string[],
  timeoutMs: number,
  check: (r: Received) => void = () => {},
): Promise<void> {
  await rx.waitFor(
    () => new Set(fresh().map((r) => r.webhookId)).size >= aggregates.length,
    timeoutMs,
    `${aggregates.length} re-sent webhooks`,
  );
  const byAggregate = new Map<string, Set<string>>();
  for (const r of fresh()) {
    check(r);
    const set = byAggregate.get(contractOf(r.body)) ?? new Set<string>();
    set.add(r.webhookId);
    byAggregate.set(contractOf(r.body), set);
  }
  expect([...byAggregate.keys()].sort()).toEqual([...aggregates].sort());
  expect([...byAggregate.values()].every((s) => s.size === 1)).toBe(true);
}

describe.each(STORE_KINDS)("the bulk re-send incident, replayed on the %s store", (kind) => {
  const setup = useHeraldAndReceiver(kind, SETTINGS);

  it("dry run creates nothing; a job killed after 467 of 529 resumes with exactly the rest; a new job with skip_delivered_after skips all 529", {
    timeout: 240_000,
  }, async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "acme", "/acme");
    await subscribe(h, rx, "globex", "/globex");
    const contracts = Array.from({ length: 529 }, (_, i) => pad(i + 1));
    const decoys = ["g-1", "g-2", "g-3"];
    await emit(h, "acme", contracts);
    await emit(h, "globex", decoys);
    // (A delivery may arrive twice, with the same webhook-id, if its short lease ran out under load.)
    await rx.waitFor(
      (r) => new Set(r.map((x) => x.webhookId)).size >= 532,
      60_000,
      "the original deliveries",
    );
    const original = new Set(rx.received.map((r) => r.webhookId));
    expect(original.size).toBe(532);

    // The on-call engineer's ID file: the 529 contracts, with tenant globex's IDs mixed in by mistake.
    const file = [
      "# contract.executed for acme, incident 2026-11-20",
      ...contracts.slice(0, 300),
      "",
      "g-1",
      ...contracts.slice(300),
      "g-2",
      "  g-3  ",
      "c-001",
      "# end",
    ].join("\n");
    const { ids, duplicates } = parseIdsFile(file, "aggregate");
    expect(ids).toHaveLength(532);
    expect(duplicates).toBe(1);
    const request = { tenant_id: "acme", event_type: TYPE, aggregate_ids: ids, batch_size: 50 };

    // Dry run: per ID what would happen, the plan, and nothing written.
    const before = await rowCounts(h);
    const dry = await h.api<Preview>("POST", "/v1/retriggers", { ...request, dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({
      dry_run: true,
      total: 532,
      would_trigger: 529,
      would_skip: 0,
      would_fail: 3,
    });
    expect(dry.body.plan).toMatchObject({ chunks: 11, batch_size: 50 });
    const failing = dry.body.items.filter((i) => i.outcome === "WOULD_FAIL");
    expect(failing.map((i) => [i.requested_id, i.reason])).toEqual(decoys.map((d) => [d, "other_tenant"]));
    expect(
      dry.body.items
        .filter((i) => i.outcome === "WOULD_TRIGGER")
        .map((i) => i.requested_id)
        .sort(),
    ).toEqual(contracts);
    expect(await rowCounts(h)).toEqual(before);
    expect((await h.api<{ items: Job[] }>("GET", "/v1/retriggers")).body.items).toEqual([]);

    // The job, run by a dispatcher that dies without cleanup right before item 468.
    await h.proc.retriggerRunner!.stop();
    const doomed = await doomedRunner(h, 468);
    const created = await h.api<Job>("POST", "/v1/retriggers", request);
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({
      status: "pending",
      total: 532,
      failed: 3,
      pending: 529,
      created_by: "admin",
    });
    const jobId = created.body.job_id;
    await doomed.runner.start();
    await doomed.killAtItem();

    // What was committed at the kill is whole groups of items, all before item 468; the rest is pending.
    const mid = await getJob(h, jobId);
    expect(mid).toMatchObject({ status: "running", skipped: 0, failed: 3 });
    expect(mid.sent).toBeLessThan(467 + 1);
    expect(mid.sent + mid.failed + mid.pending).toBe(mid.total);
    expect(mid.completed).toBe(mid.sent + 3);
    expect(mid.lease_owner).toBe("doomed-dispatcher");
    const pending = await allItems(h, jobId, "pending");
    expect(pending.map((i) => i.requested_id)).toEqual(contracts.slice(mid.sent));
    // Nobody renews the lease: the job shows as interrupted.
    await waitJob(h, jobId, (j) => j.interrupted, "interrupted after the lease expired");

    const resumed = await h.api<Job>("POST", `/v1/retriggers/${jobId}/resume`, { reason: "worker killed" });
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: "running", lease_owner: null, pending: mid.pending });
    await h.proc.retriggerRunner!.start();
    const done = await waitJob(h, jobId, (j) => j.status === "completed", "completed");
    expect(done).toMatchObject({ total: 532, completed: 532, sent: 529, skipped: 0, failed: 3, pending: 0 });

    // The receiver got exactly one new webhook-id per contract, none for globex.
    const fresh = () => rx.received.filter((r) => !original.has(r.webhookId));
    await expectOneWebhookPerAggregate(rx, fresh, contracts, 60_000, (r) => {
      expect(r.verified).toBe(true);
      expect(r.path).toBe("/acme");
      expect(r.body.type).toBe(TYPE);
    });
    expect(new Set(rx.received.filter((r) => r.path === "/globex").map((r) => r.webhookId)).size).toBe(3);

    // Every item's outcome: 529 sent as distinct new events linked to the job and their source.
    const items = await allItems(h, jobId);
    const sent = items.filter((i) => i.outcome === "sent");
    expect(sent).toHaveLength(529);
    expect(new Set(sent.map((i) => i.new_event_id)).size).toBe(529);
    const sample = await h.api<{ event: { retrigger_of: number; job_id: number; aggregate_id: string } }>(
      "GET",
      `/v1/events/${sent[0]!.new_event_id}`,
    );
    expect(sample.body.event).toMatchObject({
      retrigger_of: sent[0]!.source_event_id,
      job_id: jobId,
      aggregate_id: "c-001",
    });
    expect(items.filter((i) => i.outcome === "failed").map((i) => [i.requested_id, i.reason])).toEqual(
      decoys.map((d) => [d, "other_tenant"]),
    );

    // Every state change of the job is in the audit log, with who did it.
    const audit = await h.api<Audit>("GET", `/v1/audit?job_id=${jobId}`);
    expect(audit.body.items.map((a) => [a.action, a.actor])).toEqual([
      ["retrigger.completed", "system"],
      ["retrigger.resumed", "admin"],
      ["retrigger.started", "system"],
      ["retrigger.created", "admin"],
    ]);
    expect(audit.body.items[1]).toMatchObject({
      reason: "worker killed",
      before: { status: "running", lease_owner: "doomed-dispatcher", pending: mid.pending },
      after: { status: "running", lease_owner: null },
    });

    // A new job over the same IDs, skipping what was delivered since the first job started: sends nothing.
    const again = { ...request, skip_delivered_after: done.started_at };
    const preview = await eventually(
      async () => {
        const r = await h.api<Preview>("POST", "/v1/retriggers", { ...again, dry_run: true });
        return r.body.would_skip === 529 ? r.body : undefined;
      },
      30_000,
      "the re-sent deliveries recorded as delivered",
    );
    expect(preview).toMatchObject({ would_trigger: 0, would_skip: 529, would_fail: 3 });
    expect(preview.items.find((i) => i.outcome === "WOULD_SKIP")!.reason).toBe("delivered_since");
    const second = await h.api<Job>("POST", "/v1/retriggers", again);
    expect(second.status).toBe(202);
    const secondDone = await waitJob(
      h,
      second.body.job_id,
      (j) => j.status === "completed",
      "second job completed",
    );
    expect(secondDone).toMatchObject({ sent: 0, skipped: 529, failed: 3 });
    const secondItems = await allItems(h, second.body.job_id, "skipped");
    expect(secondItems).toHaveLength(529);
    expect(secondItems.every((i) => i.new_event_id === null && i.reason === "delivered_since")).toBe(true);
    expect(new Set(rx.received.map((r) => r.webhookId)).size).toBe(532 + 529);
  });

  it("a job whose dispatcher dies is taken up by a live one once the lease expires, with no resume", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "initech", "/initech");
    const aggregates = Array.from({ length: 40 }, (_, i) => `i-${i + 1}`);
    await emit(h, "initech", aggregates);
    await rx.waitFor(
      (r) => new Set(r.filter((x) => x.path === "/initech").map((x) => x.webhookId)).size >= 40,
      30_000,
      "originals",
    );
    const original = new Set(rx.received.map((r) => r.webhookId));

    await h.proc.retriggerRunner!.stop();
    const doomed = await doomedRunner(h, 16);
    const created = await h.api<Job>("POST", "/v1/retriggers", {
      tenant_id: "initech",
      event_type: TYPE,
      aggregate_ids: aggregates,
      batch_size: 10,
    });
    const jobId = created.body.job_id;
    await doomed.runner.start();
    await doomed.killAtItem();
    const mid = await getJob(h, jobId);
    expect(mid).toMatchObject({ lease_owner: "doomed-dispatcher" });
    expect(mid.sent).toBeLessThan(15 + 1);
    expect(mid.sent + mid.pending).toBe(40);
    expect((await allItems(h, jobId, "pending")).map((i) => i.requested_id)).toEqual(
      aggregates.slice(mid.sent),
    );

    await h.proc.retriggerRunner!.start();
    const done = await waitJob(h, jobId, (j) => j.status === "completed", "completed by the live runner");
    expect(done).toMatchObject({ sent: 40, pending: 0 });
    const audit = await h.api<Audit>("GET", `/v1/audit?job_id=${jobId}`);
    const recovered = audit.body.items.find((a) => a.action === "retrigger.lease_recovered");
    expect(recovered).toMatchObject({ actor: "system", before: { lease_owner: "doomed-dispatcher" } });

    const fresh = () => rx.received.filter((r) => r.path === "/initech" && !original.has(r.webhookId));
    await expectOneWebhookPerAggregate(rx, fresh, aggregates, 30_000);
  });
});

describe.skipIf(!process.env.DATABASE_URL)(
  "the incident with a real dispatcher process killed by SIGKILL",
  () => {
    const setup = useHeraldAndReceiver("postgres", SETTINGS);

    it("the live dispatcher finishes the job after the kill: one new webhook-id per contract", async () => {
      const { h, rx } = setup;
      await subscribe(h, rx, "acme", "/acme");
      const contracts = Array.from({ length: 529 }, (_, i) => pad(i + 1));
      await emit(h, "acme", contracts);
      await rx.waitFor(
        (r) => new Set(r.map((x) => x.webhookId)).size >= 529,
        60_000,
        "the original deliveries",
      );
      const original = new Set(rx.received.map((r) => r.webhookId));

      // Only the child runs jobs until it is killed.
      await h.proc.retriggerRunner!.stop();
      const child = spawn(process.execPath, ["bin/herald.js", "dispatcher", "--no-migrate"], {
        env: {
          ...process.env,
          DATABASE_URL: h.store.databaseUrl!,
          HERALD_ADMIN_TOKEN: ADMIN,
          HERALD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
          HERALD_ALLOW_PRIVATE_TARGETS: "true",
          HERALD_REQUEST_TIMEOUT_MS: "1000",
          HERALD_LEASE_MS: "2000",
          HERALD_LOG_LEVEL: "warn",
        },
        stdio: "ignore",
      });
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      try {
        // The pause between chunks leaves the kill a window well before the end.
        const created = await h.api<Job>("POST", "/v1/retriggers", {
          tenant_id: "acme",
          event_type: TYPE,
          aggregate_ids: contracts,
          batch_size: 50,
          delay_ms: 1000,
        });
        const jobId = created.body.job_id;
        await waitJob(h, jobId, (j) => j.completed >= 467, "467 items done by the child", 90_000);
        child.kill("SIGKILL");
        await exited;
        const atKill = await getJob(h, jobId);
        expect(atKill.status, "the job must still be running when the child is killed").toBe("running");
        expect(atKill.completed).toBeGreaterThanOrEqual(467);
        expect(atKill.completed).toBeLessThan(529);

        await h.proc.retriggerRunner!.start();
        const done = await waitJob(
          h,
          jobId,
          (j) => j.status === "completed",
          "completed after the kill",
          60_000,
        );
        expect(done).toMatchObject({ sent: 529, failed: 0, skipped: 0 });
        // Deliveries the child had in flight come again with the same webhook-id; new ids are one per contract.
        const fresh = () => rx.received.filter((r) => !original.has(r.webhookId));
        await expectOneWebhookPerAggregate(rx, fresh, contracts, 60_000);
      } finally {
        child.kill("SIGKILL");
      }
    });
  },
);
