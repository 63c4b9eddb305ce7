import { describe, expect, it } from "vitest";
import { eventually, Gate } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";
import {
  type Audit,
  allItems,
  contractOf,
  type Err,
  emit,
  getJob,
  type Job,
  type Preview,
  retriggerSettings,
  rowCounts,
  subscribe,
  type TestRunnerOptions,
  TYPE,
  useHeraldAndReceiver,
  waitJob,
  withTestRunner,
} from "./helpers.ts";

const SETTINGS = retriggerSettings(1000, 3000);

describe.each(STORE_KINDS)("re-trigger jobs through the API on the %s store", (kind) => {
  const setup = useHeraldAndReceiver(kind, SETTINGS);

  const create = (body: Record<string, unknown>, token?: string) =>
    setup.h.api<Job & Preview & Err>("POST", "/v1/retriggers", body, token);
  const base = { tenant_id: "bounds", event_type: TYPE, aggregate_ids: ["a"] };

  it.each([
    [{ batch_size: 0 }, "batch_size must be an integer between 1 and 1000; got 0"],
    [{ batch_size: 1001 }, "batch_size must be an integer between 1 and 1000; got 1001"],
    [{ delay_ms: -1 }, "delay_ms must be an integer between 0 and 3600000; got -1"],
    [{ delay_ms: 3_600_001 }, "delay_ms must be an integer between 0 and 3600000; got 3600001"],
    [{ chunk_budget_ms: 999 }, "chunk_budget_ms must be an integer between 1000 and 600000; got 999"],
    [{ chunk_budget_ms: 600_001 }, "chunk_budget_ms must be an integer between 1000 and 600000; got 600001"],
    [{ aggregate_ids: [] }, "aggregate_ids must list between 1 and 100000 IDs; got 0"],
    [{ aggregate_ids: undefined, event_ids: [] }, "event_ids must list between 1 and 100000 IDs; got 0"],
    [
      {
        aggregate_ids: undefined,
        occurred_after: "2026-01-02T00:00:00Z",
        occurred_before: "2026-01-01T00:00:00Z",
      },
      "occurred_after (2026-01-02T00:00:00.000Z) must be earlier than occurred_before (2026-01-01T00:00:00.000Z)",
    ],
  ])("refuses %j with 422 naming the bound, dry run or not", async (over, message) => {
    for (const dry_run of [true, false]) {
      const r = await create({ ...base, ...over, dry_run });
      expect(r.status).toBe(422);
      expect(r.body.error).toEqual({ code: "out_of_range", message });
    }
  });

  it("refuses more IDs than one job may hold with 422", async () => {
    const ids = Array.from({ length: 100_001 }, (_, i) => `x${i}`);
    const r = await create({ ...base, aggregate_ids: ids, dry_run: true });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toBe("aggregate_ids must list between 1 and 100000 IDs; got 100001");
  });

  it("answers malformed requests with 400 naming the field", async () => {
    const { h } = setup;
    const unknown = await create({ ...base, colour: "red" });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toEqual({ code: "unknown_field", message: 'unknown field "colour"' });
    const missing = await create({ tenant_id: "bounds", aggregate_ids: ["a"] });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain("event_type");
    const two = await create({ ...base, event_ids: [1] });
    expect(two.status).toBe(400);
    expect(two.body.error.message).toBe("give one selection, not several: aggregate_ids, event_ids");
    const none = await create({ tenant_id: "bounds", event_type: TYPE });
    expect(none.status).toBe(400);
    expect(none.body.error.message).toMatch(/give a selection/);
    const badDate = await create({ ...base, skip_delivered_after: "yesterday" });
    expect(badDate.status).toBe(400);
    expect(badDate.body.error.message).toContain("skip_delivered_after");
    const noTenant = await create({ event_type: TYPE, aggregate_ids: ["a"] });
    expect(noTenant.status).toBe(400);
    expect(noTenant.body.error.message).toBe("tenant_id is required with the admin token");
    expect((await h.api<Err>("GET", "/v1/retriggers/999999")).status).toBe(404);
    expect((await h.api<Err>("GET", "/v1/retriggers/abc")).status).toBe(400);
    expect((await h.api<Err>("GET", "/v1/retriggers/1/items?outcome=maybe")).status).toBe(400);
  });

  it("keeps tenant tokens to their tenant: implied tenant, 403 for another, 404 for another's job, no leak in the dry run", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "t-a", "/t-a");
    await subscribe(h, rx, "t-b", "/t-b");
    const [aEvent] = await emit(h, "t-a", ["a-1"]);
    const [bEvent] = await emit(h, "t-b", ["b-1"]);
    const tokenA = (await h.api<{ token: string }>("POST", "/v1/tokens", { tenant_id: "t-a" })).body.token;

    const forbidden = await create({ tenant_id: "t-b", event_type: TYPE, aggregate_ids: ["b-1"] }, tokenA);
    expect(forbidden.status).toBe(403);

    // The guard: another tenant's IDs never resolve; a tenant token is not told they exist elsewhere.
    const dry = await create({ event_type: TYPE, aggregate_ids: ["a-1", "b-1"], dry_run: true }, tokenA);
    expect(dry.status).toBe(200);
    expect(dry.body.items.map((i) => [i.requested_id, i.outcome, i.reason])).toEqual([
      ["a-1", "WOULD_TRIGGER", null],
      ["b-1", "WOULD_FAIL", "not_found"],
    ]);
    const dryEvents = await create({ event_type: TYPE, event_ids: [aEvent, bEvent], dry_run: true }, tokenA);
    expect(dryEvents.body.items.map((i) => i.reason)).toEqual([null, "not_found"]);
    const adminDry = await create({
      tenant_id: "t-a",
      event_type: TYPE,
      event_ids: [aEvent, bEvent],
      dry_run: true,
    });
    expect(adminDry.body.items.map((i) => i.reason)).toEqual([null, "other_tenant"]);

    const mine = await create({ event_type: TYPE, aggregate_ids: ["a-1"] }, tokenA);
    expect(mine.status).toBe(202);
    expect(mine.body.tenant_id).toBe("t-a");
    expect(mine.body.created_by).toMatch(/^token:/);
    const theirs = await create({ tenant_id: "t-b", event_type: TYPE, aggregate_ids: ["b-1"] });
    expect(theirs.status).toBe(202);
    const b = theirs.body.job_id;
    expect((await h.api<Err>("GET", `/v1/retriggers/${b}`, undefined, tokenA)).status).toBe(404);
    expect((await h.api<Err>("GET", `/v1/retriggers/${b}/items`, undefined, tokenA)).status).toBe(404);
    expect((await h.api<Err>("POST", `/v1/retriggers/${b}/resume`, {}, tokenA)).status).toBe(404);
    expect((await h.api<Err>("POST", `/v1/retriggers/${b}/cancel`, {}, tokenA)).status).toBe(404);
    const listed = await h.api<{ items: Job[] }>("GET", "/v1/retriggers", undefined, tokenA);
    expect(listed.body.items.map((j) => j.job_id)).toEqual([mine.body.job_id]);
    const audit = await h.api<Audit>("GET", `/v1/audit?job_id=${b}`, undefined, tokenA);
    expect(audit.body.items).toEqual([]);
    expect((await getJob(h, mine.body.job_id, tokenA)).tenant_id).toBe("t-a");
    await waitJob(h, b, (j) => j.status === "completed", "t-b job done");
  });

  it("cancel stops a job between chunks and in the middle of one; its pending items stay listed; both are audited", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "stop", "/stop");
    const aggregates = Array.from({ length: 6 }, (_, i) => `s-${i + 1}`);
    await emit(h, "stop", aggregates);

    // Between chunks: one item per chunk, an hour between chunks.
    const slow = await create({
      tenant_id: "stop",
      event_type: TYPE,
      aggregate_ids: aggregates,
      batch_size: 1,
      delay_ms: 3_600_000,
    });
    expect(slow.status).toBe(202);
    const waiting = await waitJob(
      h,
      slow.body.job_id,
      (j) => j.sent === 1 && j.lease_owner === null,
      "first chunk",
    );
    expect(waiting).toMatchObject({ status: "running", chunks_done: 1, pending: 5, interrupted: false });
    const cancelled = await h.api<Job>("POST", `/v1/retriggers/${slow.body.job_id}/cancel`, {
      reason: "wrong list",
    });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: "cancelled", sent: 1, pending: 5, next_chunk_at: null });
    expect(cancelled.body.finished_at).not.toBeNull();
    expect((await allItems(h, slow.body.job_id, "pending")).map((i) => i.requested_id)).toEqual(
      aggregates.slice(1),
    );
    const again = await h.api<Err>("POST", `/v1/retriggers/${slow.body.job_id}/cancel`, {});
    expect(again.status).toBe(409);
    const resume = await h.api<Err>("POST", `/v1/retriggers/${slow.body.job_id}/resume`, {});
    expect(resume.status).toBe(409);
    expect(resume.body.error.message).toContain("cancelled");
    const audit = await h.api<Audit>("GET", `/v1/audit?job_id=${slow.body.job_id}`);
    expect(audit.body.items.map((a) => a.action)).toEqual([
      "retrigger.cancelled",
      "retrigger.started",
      "retrigger.created",
    ]);
    expect(audit.body.items[0]).toMatchObject({
      actor: "admin",
      reason: "wrong list",
      after: { status: "cancelled", pending: 5 },
    });

    // In the middle of a chunk: the runner finds the job cancelled at its next group of items (a group's
    // transaction checks the lease) and stops there; the group in progress is not written.
    const atThird = new Gate();
    const go = new Gate();
    let calls = 0;
    const beforeItem = async () => {
      calls += 1;
      if (calls === 3) {
        atThird.open();
        await go.opened;
      }
    };
    await withTestRunner(h, { beforeItem }, async (runner) => {
      try {
        const busy = await create({
          tenant_id: "stop",
          event_type: TYPE,
          aggregate_ids: aggregates,
          batch_size: 10,
        });
        await runner.start();
        await atThird.opened;
        expect((await h.api<Job>("POST", `/v1/retriggers/${busy.body.job_id}/cancel`, {})).body.status).toBe(
          "cancelled",
        );
        go.open();
        await runner.stop();
        const after = await getJob(h, busy.body.job_id);
        expect(after).toMatchObject({ status: "cancelled" });
        expect(after.sent).toBeLessThan(2 + 1);
        expect(after.sent + after.pending).toBe(6);
        expect((await allItems(h, busy.body.job_id, "pending")).map((i) => i.requested_id)).toEqual(
          aggregates.slice(after.sent),
        );
      } finally {
        go.open();
      }
    });
  });

  it("a job whose chunks keep failing becomes failed with the error (audited); resume runs it to the end", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "flaky", "/flaky");
    await emit(h, "flaky", ["f-1", "f-2", "f-3"]);
    let broken = true;
    const opts: TestRunnerOptions = {
      retryDelayMs: () => 10,
      beforeItem: (_job, ordinal) => {
        if (broken && ordinal === 2) throw new Error("disk on fire");
      },
    };
    await withTestRunner(h, opts, async (runner) => {
      const job = await create({
        tenant_id: "flaky",
        event_type: TYPE,
        aggregate_ids: ["f-1", "f-2", "f-3"],
      });
      await runner.start();
      const failed = await waitJob(h, job.body.job_id, (j) => j.status === "failed", "failed");
      // Item 2's group never started: at most item 1 (its own group) was written.
      expect(failed).toMatchObject({ error_count: 5, last_error: "disk on fire" });
      expect(failed.sent).toBeLessThan(1 + 1);
      expect(failed.sent + failed.pending).toBe(3);
      broken = false;
      const resumed = await h.api<Job>("POST", `/v1/retriggers/${job.body.job_id}/resume`, {});
      expect(resumed.body).toMatchObject({ status: "running", error_count: 0, finished_at: null });
      const done = await waitJob(h, job.body.job_id, (j) => j.status === "completed", "completed");
      expect(done).toMatchObject({ sent: 3, pending: 0 });
      const audit = await h.api<Audit>("GET", `/v1/audit?job_id=${job.body.job_id}`);
      expect(audit.body.items.map((a) => [a.action, a.actor])).toEqual([
        ["retrigger.completed", "system"],
        ["retrigger.resumed", "admin"],
        ["retrigger.failed", "system"],
        ["retrigger.started", "system"],
        ["retrigger.created", "admin"],
      ]);
      expect(audit.body.items[2]!.reason).toContain("disk on fire");
    });
  });

  it("sends only to the job's subscription when one is named, and refuses one that cannot take the event", async () => {
    const { h, rx } = setup;
    const one = await subscribe(h, rx, "pick", "/pick-1");
    await subscribe(h, rx, "pick", "/pick-2");
    const other = await subscribe(h, rx, "pick", "/pick-3", ["order.created"]);
    const foreign = await subscribe(h, rx, "not-pick", "/not-pick");
    await emit(h, "pick", ["p-1", "p-2"]);
    await rx.waitFor(
      (r) => new Set(r.filter((x) => x.path.startsWith("/pick-")).map((x) => x.webhookId)).size >= 4,
      30_000,
      "originals",
    );
    const seen = new Set(rx.received.map((r) => r.webhookId));

    const job = await create({
      tenant_id: "pick",
      event_type: TYPE,
      aggregate_ids: ["p-1", "p-2"],
      subscription_id: one,
    });
    expect(job.status).toBe(202);
    expect(job.body.subscription_id).toBe(one);
    await waitJob(h, job.body.job_id, (j) => j.status === "completed", "completed");
    const items = await allItems(h, job.body.job_id);
    expect(items.map((i) => [i.outcome, i.deliveries])).toEqual([
      ["sent", 1],
      ["sent", 1],
    ]);
    // (Distinct webhook-ids: a delivery may arrive twice if its short lease ran out under load.)
    const fresh = () => rx.received.filter((r) => !seen.has(r.webhookId));
    await rx.waitFor(() => new Set(fresh().map((r) => r.webhookId)).size >= 2, 30_000, "re-sent webhooks");
    expect(new Set(fresh().map((r) => r.path))).toEqual(new Set(["/pick-1"]));

    const p1To = (subscription_id: string) =>
      create({ tenant_id: "pick", event_type: TYPE, aggregate_ids: ["p-1"], subscription_id });
    const wrongType = await p1To(other);
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toContain("does not receive contract.executed");
    const wrongTenant = await p1To(foreign);
    expect(wrongTenant.status).toBe(400);
    expect(wrongTenant.body.error.message).toContain("belongs to tenant not-pick");
    const unknown = await p1To("sub_nope");
    expect(unknown.status).toBe(404);
  });

  it("fails items it cannot send, with why: not found, other event type, no matching subscription", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "why", "/why");
    const [typed] = await emit(h, "why", ["w-1"]);
    const [otherType] = await emit(h, "why", ["w-2"], "order.created");
    const dry = await create({
      tenant_id: "why",
      event_type: TYPE,
      event_ids: [typed, otherType, 99_999_999],
      dry_run: true,
    });
    expect(dry.body.items.map((i) => [i.requested_id, i.outcome, i.reason])).toEqual([
      [String(typed), "WOULD_TRIGGER", null],
      [String(otherType), "WOULD_FAIL", "other_event_type"],
      ["99999999", "WOULD_FAIL", "not_found"],
    ]);
    await emit(h, "lonely", ["l-1"]);
    const nobody = await create({ tenant_id: "lonely", event_type: TYPE, aggregate_ids: ["l-1", "l-2"] });
    const done = await waitJob(h, nobody.body.job_id, (j) => j.status === "completed", "completed");
    expect(done).toMatchObject({ sent: 0, failed: 2 });
    expect((await allItems(h, nobody.body.job_id)).map((i) => [i.requested_id, i.reason])).toEqual([
      ["l-1", "no_matching_subscription"],
      ["l-2", "not_found"],
    ]);
  });

  it("selects by occurred_at window (after inclusive, before exclusive), never picking re-emitted copies", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "win", "/win");
    for (const day of ["01", "02", "03", "04"]) {
      const r = await h.api("POST", "/v1/events", {
        tenant_id: "win",
        event_type: TYPE,
        aggregate_id: `d-${day}`,
        occurred_at: `2026-01-${day}T00:00:00Z`,
        payload: { contract: `d-${day}` },
      });
      expect(r.status).toBe(202);
    }
    const window = {
      tenant_id: "win",
      event_type: TYPE,
      occurred_after: "2026-01-02T00:00:00Z",
      occurred_before: "2026-01-04T00:00:00Z",
    };
    const dry = await create({ ...window, dry_run: true });
    expect(dry.body.selection).toEqual({
      kind: "window",
      occurred_after: "2026-01-02T00:00:00.000Z",
      occurred_before: "2026-01-04T00:00:00.000Z",
    });
    expect(dry.body.total).toBe(2);
    const job = await create(window);
    await waitJob(h, job.body.job_id, (j) => j.status === "completed", "completed");
    const sent = await allItems(h, job.body.job_id, "sent");
    const copies = await Promise.all(
      sent.map((i) =>
        h.api<{ event: { aggregate_id: string; occurred_at: string } }>(
          "GET",
          `/v1/events/${i.new_event_id}`,
        ),
      ),
    );
    expect(copies.map((c) => [c.body.event.aggregate_id, c.body.event.occurred_at])).toEqual([
      ["d-02", "2026-01-02T00:00:00.000Z"],
      ["d-03", "2026-01-03T00:00:00.000Z"],
    ]);
    const again = await create({ ...window, dry_run: true });
    expect(again.body.total).toBe(2);
    const empty = await create({
      ...window,
      occurred_after: "2030-01-01T00:00:00Z",
      occurred_before: "2030-01-02T00:00:00Z",
    });
    expect(empty.status).toBe(422);
    expect(empty.body.error.message).toContain("matches no events");
  });

  it("with skip_delivered_after leaves out the subscriptions that already had the aggregate's event, sends to the others", async () => {
    const { h, rx } = setup;
    const since = new Date(Date.now() - 1000).toISOString();
    const early = await subscribe(h, rx, "part", "/part-early");
    await emit(h, "part", ["q-1"]);
    await rx.waitFor((r) => r.some((x) => x.path === "/part-early"), 30_000, "first delivery");
    await subscribe(h, rx, "part", "/part-late");
    const body = { tenant_id: "part", event_type: TYPE, aggregate_ids: ["q-1"], skip_delivered_after: since };
    const dry = await eventually(async () => {
      const r = await create({ ...body, dry_run: true });
      return r.body.items[0]!.subscriptions.length === 1 ? r.body : undefined;
    });
    expect(dry.items[0]).toMatchObject({ outcome: "WOULD_TRIGGER" });
    expect(dry.items[0]!.detail).toContain(early);
    const seen = new Set(rx.received.map((r) => r.webhookId));
    const job = await create(body);
    await waitJob(h, job.body.job_id, (j) => j.status === "completed", "completed");
    const [item] = await allItems(h, job.body.job_id);
    expect(item).toMatchObject({ outcome: "sent", deliveries: 1 });
    expect(item!.detail).toContain(early);
    const fresh = () => rx.received.filter((r) => !seen.has(r.webhookId));
    await rx.waitFor(() => fresh().length > 0, 30_000, "the re-sent webhook");
    expect(new Set(fresh().map((r) => `${r.path} ${contractOf(r.body)}`))).toEqual(
      new Set(["/part-late q-1"]),
    );
  });

  it("writes a group of items with different targets in one transaction; a group whose targets vanish is redone item by item", async () => {
    const { h, rx } = setup;
    // Items 1 and 3 go to both subscriptions, item 2 (delivered to the early one since the time) only to the late one.
    const early = await subscribe(h, rx, "mix", "/mix-early");
    await emit(h, "mix", ["m-1", "m-3"]);
    await rx.waitFor((r) => r.filter((x) => x.path === "/mix-early").length >= 2, 30_000, "first deliveries");
    await new Promise((r) => setTimeout(r, 500));
    const since = new Date().toISOString();
    await emit(h, "mix", ["m-2"]);
    await rx.waitFor((r) => r.filter((x) => x.path === "/mix-early").length >= 3, 30_000, "m-2 delivered");
    const late = await subscribe(h, rx, "mix", "/mix-late");
    const body = {
      tenant_id: "mix",
      event_type: TYPE,
      aggregate_ids: ["m-1", "m-2", "m-3"],
      skip_delivered_after: since,
    };
    await eventually(async () => {
      const r = await create({ ...body, dry_run: true });
      return r.body.items.map((i) => i.subscriptions.length).join() === "2,1,2" ? true : undefined;
    });
    const seen = new Set(rx.received.map((r) => r.webhookId));
    const job = await create(body);
    const done = await waitJob(h, job.body.job_id, (j) => j.status === "completed", "completed");
    expect(done).toMatchObject({ sent: 3, skipped: 0, failed: 0, chunks_done: 1 });
    const items = await allItems(h, job.body.job_id);
    expect(items.map((i) => [i.requested_id, i.outcome, i.deliveries])).toEqual([
      ["m-1", "sent", 2],
      ["m-2", "sent", 1],
      ["m-3", "sent", 2],
    ]);
    expect(items[1]!.detail).toContain(early);
    // New events in item order.
    const ids = items.map((i) => i.new_event_id!);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const fresh = () => rx.received.filter((r) => !seen.has(r.webhookId));
    await rx.waitFor(
      () => new Set(fresh().map((r) => r.webhookId)).size >= 5,
      30_000,
      "the re-sent webhooks",
    );
    expect(new Set(fresh().map((r) => `${r.path} ${contractOf(r.body)}`))).toEqual(
      new Set(["/mix-early m-1", "/mix-early m-3", "/mix-late m-1", "/mix-late m-2", "/mix-late m-3"]),
    );
    expect(late).not.toBe(early);

    // The only subscription is deleted while the group is formed: the group's transaction finds no target
    // for its first item and rolls back; item by item, each fails as having no matching subscription.
    const only = await subscribe(h, rx, "gone", "/gone");
    await emit(h, "gone", ["v-1", "v-2", "v-3"]);
    let calls = 0;
    const beforeItem = async () => {
      calls += 1;
      if (calls === 2) expect((await h.api("DELETE", `/v1/subscriptions/${only}`)).status).toBe(204);
    };
    await withTestRunner(h, { beforeItem }, async (runner) => {
      const gone = await create({
        tenant_id: "gone",
        event_type: TYPE,
        aggregate_ids: ["v-1", "v-2", "v-3"],
      });
      await runner.start();
      const end = await waitJob(h, gone.body.job_id, (j) => j.status === "completed", "completed");
      expect(end).toMatchObject({ sent: 0, skipped: 0, failed: 3 });
      expect(calls).toBe(3);
      const outcomes = await allItems(h, gone.body.job_id);
      expect(outcomes.map((i) => [i.outcome, i.reason, i.new_event_id])).toEqual([
        ["failed", "no_matching_subscription", null],
        ["failed", "no_matching_subscription", null],
        ["failed", "no_matching_subscription", null],
      ]);
    });
  });

  it("lists jobs newest first and pages items with a cursor; the routes are in /openapi.json", async () => {
    const { h, rx } = setup;
    await subscribe(h, rx, "page", "/page");
    await emit(h, "page", ["x-1", "x-2", "x-3"]);
    const first = await create({ tenant_id: "page", event_type: TYPE, aggregate_ids: ["x-1", "x-2", "x-3"] });
    const second = await create({ tenant_id: "page", event_type: TYPE, aggregate_ids: ["x-1"] });
    const list = await h.api<{ items: Job[]; next_cursor: number | null }>("GET", "/v1/retriggers?limit=1");
    expect(list.body.items.map((j) => j.job_id)).toEqual([second.body.job_id]);
    const next = await h.api<{ items: Job[] }>(
      "GET",
      `/v1/retriggers?limit=1&cursor=${list.body.next_cursor}`,
    );
    expect(next.body.items.map((j) => j.job_id)).toEqual([first.body.job_id]);
    const p1 = await h.api<{ items: Array<{ requested_id: string }>; next_cursor: number }>(
      "GET",
      `/v1/retriggers/${first.body.job_id}/items?limit=2`,
    );
    expect(p1.body.items.map((i) => i.requested_id)).toEqual(["x-1", "x-2"]);
    const p2 = await h.api<{ items: Array<{ requested_id: string }>; next_cursor: number | null }>(
      "GET",
      `/v1/retriggers/${first.body.job_id}/items?limit=2&cursor=${p1.body.next_cursor}`,
    );
    expect(p2.body.items.map((i) => i.requested_id)).toEqual(["x-3"]);
    expect(p2.body.next_cursor).toBeNull();

    const doc = await fetch(`${h.url}/openapi.json`).then(
      (r) => r.json() as Promise<{ paths: Record<string, unknown> }>,
    );
    for (const p of [
      "/v1/retriggers",
      "/v1/retriggers/{id}",
      "/v1/retriggers/{id}/items",
      "/v1/retriggers/{id}/resume",
      "/v1/retriggers/{id}/cancel",
    ]) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
    const counts = await rowCounts(h);
    expect(counts.jobs).toBeGreaterThan(0);
  });
});
