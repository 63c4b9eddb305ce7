import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";
import { STORE_KINDS } from "../support/store.ts";
import { PanelClient, visibleText } from "./client.ts";

interface Sub {
  subscription_id: string;
  secret: string;
  status: string;
  pending_ceiling: number;
  dlq_ceiling: number;
  pending_count: number;
}
interface Head {
  head: { event: { event_id: number } } | null;
}
interface Audit {
  items: Array<{ actor: string; action: string; reason: string | null }>;
}

const XSS = `<script>alert("x")</script>`;

describe.each(STORE_KINDS)("panel pages and actions on the %s store", (kind) => {
  let h: TestHerald;
  let c: PanelClient;
  const rx = new Receiver();
  let id: string;
  let other: string;
  let firstEvent: number;

  beforeAll(async () => {
    await rx.start();
    h = await startTestHerald(
      kind,
      { retryScheduleMs: [60_000], schedulerIntervalMs: 300, requestTimeoutMs: 5000, leaseMs: 20_000 },
      { api: true, dispatcher: true },
    );
    const s = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "pages",
      url: rx.url("/hooks/orders"),
      event_types: ["order.placed"],
      ordering: "ordered",
      description: XSS,
    });
    id = s.body.subscription_id;
    rx.trust(s.body.secret);
    // The consumer rejects event n=1, with a body that must be shown as text.
    rx.behaviour = (r) =>
      (r.body.data as { n: number }).n === 1 ? { status: 400, body: "<b>bad order</b>" } : { status: 200 };
    const o = await h.api<Sub>("POST", "/v1/subscriptions", {
      tenant_id: "elsewhere",
      url: "http://127.0.0.1:9/other",
      event_types: ["x"],
    });
    other = o.body.subscription_id;
    for (let n = 1; n <= 3; n++) {
      const e = await h.api<{ event_id: number }>("POST", "/v1/events", {
        tenant_id: "pages",
        event_type: "order.placed",
        aggregate_id: `o-${n}`,
        payload: { n, note: `<img src=x onerror=alert(${n})>` },
      });
      if (n === 1) firstEvent = e.body.event_id;
    }
    await rx.waitFor((r) => r.length === 1, 20_000, "the head's first attempt");
    // The receiver has answered; the pages show the attempt once the dispatcher has recorded it.
    await eventually(
      async () => {
        const head = await h.api<{ head: { attempts: Array<{ status: string }> } | null }>(
          "GET",
          `/v1/subscriptions/${id}/head`,
        );
        return head.body.head?.attempts[0]?.status === "failed";
      },
      20_000,
      "the head's first attempt recorded as failed",
    );
    c = new PanelClient(h.url);
    await c.login(h.proc.adminToken);
  });
  afterAll(async () => {
    await h?.close();
    await rx.close();
  });

  const page = (path: string) => c.get(path);
  const sub = async () => (await h.api<Sub>("GET", `/v1/subscriptions/${id}`)).body;
  const audit = async () => (await h.api<Audit>("GET", `/v1/audit?subscription_id=${id}`)).body.items;
  const act = (path: string, form: Record<string, string>) => c.submit(path, form, `/webhooks/${id}`);

  it("lists every subscription with tenant, host, ordering, status, counts vs ceilings and the last error", async () => {
    const r = await page("/webhooks");
    expect(r.status).toBe(200);
    const text = visibleText(r.text);
    expect(text).toContain(id);
    expect(text).toContain(other);
    expect(r.text).toMatch(/<strong>127\.0\.0\.1:\d+<\/strong>/);
    const row = visibleText(new RegExp(`<tr id="row-${id}"[\\s\\S]*?</tr>`).exec(r.text)![0]);
    expect(row).toMatch(/pages .*ordered active/);
    expect(row).toMatch(/3 \/ 10,000/);
    expect(row).toMatch(/0 \/ 1,000/);
    expect(row).toMatch(/4xx HTTP 400 .* ago receiver rejected the request/);
    expect(row).toMatch(/Pause sub_/);
  });

  it("filters by tenant and status, and says so when nothing matches", async () => {
    const t = visibleText((await page("/webhooks?tenant=elsewhere")).text);
    expect(t).toContain(other);
    expect(t).not.toContain(id);
    const none = visibleText((await page("/webhooks?status=paused")).text);
    expect(none).toContain("No subscription matches these filters.");
    const bad = await page("/webhooks?status=sleepy");
    expect(bad.status).toBe(400);
    expect(visibleText(bad.text)).toContain('status must be active or paused; got "sleepy"');
  });

  it("escapes what tenants and consumers wrote: descriptions, payloads, response bodies", async () => {
    for (const path of ["/webhooks", `/webhooks/${id}`]) {
      const r = await page(path);
      expect(r.text, path).not.toContain("<script>alert");
      expect(r.text, path).not.toContain("<img src=x");
      expect(r.text, path).not.toContain("<b>bad order</b>");
    }
    const detail = (await page(`/webhooks/${id}`)).text;
    expect(detail).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(detail).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(detail).toContain("&lt;b&gt;bad order&lt;/b&gt;");
  });

  it("shows the head, its attempts and the runbook's diagnosis, also as polled fragments", async () => {
    const r = await page(`/webhooks/${id}`);
    expect(r.status).toBe(200);
    const text = visibleText(r.text);
    expect(text).toContain("Diagnosis: Consumer rejects the head event head_rejected");
    expect(text).toMatch(new RegExp(`Event ${firstEvent} Type order.placed Aggregate o-1`));
    expect(text).toMatch(/Attempt 1 failed 4xx HTTP 400/);
    expect(text).toMatch(/Attempt 2 pending/);
    expect(text).toContain(`Drop head event ${firstEvent}…`);
    expect(text).toContain("Each between 100 and 50,000 (DISPATCHER_MAX_PENDING_HARD_CAP)");
    const live = await page(`/webhooks/${id}/live`);
    expect(live.status).toBe(200);
    expect(live.text.startsWith('<section id="live"')).toBe(true);
    expect(live.text).toContain('hx-trigger="every 3s"');
    const deliveries = await page(`/webhooks/${id}/deliveries`);
    expect(deliveries.text.startsWith('<section id="deliveries"')).toBe(true);
    const rows = await page("/webhooks/fragments/subscriptions");
    expect(rows.text.startsWith('<tbody id="subscription-rows"')).toBe(true);
  });

  it("answers an unknown subscription or page with a 404 page, and a polled one without replacing the region", async () => {
    const r = await page("/webhooks/sub_doesnotexist");
    expect(r.status).toBe(404);
    expect(visibleText(r.text)).toContain("subscription sub_doesnotexist not found");
    const f = await c.get("/webhooks/sub_doesnotexist/live", { "hx-request": "true" });
    expect(f.status).toBe(404);
    expect(f.headers.get("hx-reswap")).toBe("none");
    const p = await page("/webhooks/retriggers/nope");
    expect(p.status).toBe(400);
    expect(visibleText(p.text)).toContain('job id must be a positive whole number; got "nope"');
    expect((await page("/webhooks/no/such/page")).status).toBe(404);
  });

  it("shows a ceiling outside its bounds next to the form, with the bound, not as a 500", async () => {
    const high = await act(`/webhooks/${id}/ceilings`, { pending_ceiling: "60000", dlq_ceiling: "1000" });
    expect(high.status).toBe(422);
    expect(high.text).toMatch(
      /<p class="field-error" role="alert" id="ceilings-error">pending_ceiling must be between 100 and 50000 \(DISPATCHER_MAX_PENDING_HARD_CAP\); got 60000<\/p>/,
    );
    // The typed values are kept.
    expect(high.text).toContain(
      'name="pending_ceiling" min="100" max="50000" step="1" required value="60000"',
    );
    const junk = await act(`/webhooks/${id}/ceilings`, { pending_ceiling: "lots", dlq_ceiling: "1000" });
    expect(junk.status).toBe(400);
    expect(visibleText(junk.text)).toContain('Pending ceiling must be a whole number; got "lots"');
    expect((await sub()).pending_ceiling).toBe(10000);
    const ok = await act(`/webhooks/${id}/ceilings`, { pending_ceiling: "500", dlq_ceiling: "200" });
    expect(ok.status).toBe(200);
    expect(visibleText(ok.text)).toContain("Ceilings saved: pending 500, DLQ 200.");
    expect(await sub()).toMatchObject({ pending_ceiling: 500, dlq_ceiling: 200 });
    expect((await audit())[0]).toMatchObject({ actor: "admin", action: "subscription.updated" });
  });

  it("drops the head only after a reason and a confirmation, refusing a head that moved", async () => {
    const noReason = await act(`/webhooks/${id}/drop`, { reason: "  ", event_id: String(firstEvent) });
    expect(noReason.status).toBe(400);
    expect(visibleText(noReason.text)).toContain(
      "Give a reason: it is kept in the audit log and on the DLQ row.",
    );
    const ask = await act(`/webhooks/${id}/drop`, {
      reason: "order o-1 is <broken>",
      event_id: String(firstEvent),
    });
    expect(ask.status).toBe(200);
    expect(visibleText(ask.text)).toContain(`Drop event ${firstEvent}?`);
    expect(ask.text).toContain('role="alertdialog"');
    expect(ask.text).toContain("order o-1 is &lt;broken&gt;");
    // Asking changed nothing.
    expect((await h.api<Head>("GET", `/v1/subscriptions/${id}/head`)).body.head?.event.event_id).toBe(
      firstEvent,
    );
    const stale = await act(`/webhooks/${id}/drop`, {
      reason: "x",
      event_id: String(firstEvent + 1),
      confirm: "yes",
    });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain("the head moved");
    const done = await act(`/webhooks/${id}/drop`, {
      reason: "order o-1 is <broken>",
      event_id: String(firstEvent),
      confirm: "yes",
    });
    expect(done.status).toBe(200);
    expect(done.headers.get("hx-push-url")).toBe(`/webhooks/${id}`);
    expect(visibleText(done.text)).toContain(`Dropped event ${firstEvent}: 1 delivery moved to the DLQ`);
    expect((await audit())[0]).toMatchObject({
      actor: "admin",
      action: "subscription.head_dropped",
      reason: "order o-1 is <broken>",
    });
    // The rest goes out; the head is in the DLQ.
    await rx.waitFor((r) => r.length === 3, 20_000, "events 2 and 3");
  });

  it("replays one delivery and a DLQ batch, with clear messages for what cannot be", async () => {
    const dlq = await h.api<{ items: Array<{ delivery_id: number }> }>(
      "GET",
      `/v1/deliveries?subscription_id=${id}&status=dlq`,
    );
    const dead = dlq.body.items[0]!.delivery_id;
    rx.behaviour = () => ({ status: 200 });
    const one = await act(`/webhooks/${id}/deliveries/${dead}/replay`, {});
    expect(one.status).toBe(200);
    expect(visibleText(one.text)).toMatch(new RegExp(`Delivery ${dead} is queued again as delivery \\d+`));
    await rx.waitFor((r) => r.length === 4, 20_000, "the replayed head");
    const unknown = await act(`/webhooks/${id}/deliveries/999999/replay`, {});
    expect(unknown.status).toBe(404);
    expect(visibleText(unknown.text)).toContain("delivery 999999 not found");

    const badKind = await act(`/webhooks/${id}/replay-dlq`, { error_kind: "gremlins" });
    expect(badKind.status).toBe(400);
    expect(visibleText(badKind.text)).toContain("error kind must be one of dns, connection");
    const badDate = await act(`/webhooks/${id}/replay-dlq`, { since: "yesterday" });
    expect(badDate.status).toBe(400);
    expect(visibleText(badDate.text)).toContain(
      'Failed since must be a date and time in UTC such as 2025-01-31T14:00; got "yesterday"',
    );
    const badIds = await act(`/webhooks/${id}/replay-dlq`, { event_ids: "12, twelve" });
    expect(badIds.status).toBe(400);
    expect(visibleText(badIds.text)).toContain('Event IDs: "twelve" is not an event ID');
    const none = await act(`/webhooks/${id}/replay-dlq`, { since: "2000-01-01T00:00", error_kind: "4xx" });
    expect(none.status).toBe(200);
    expect(visibleText(none.text)).toContain("Nothing was queued");
  });

  it("rotates the secret and shows the new one exactly once", async () => {
    const bad = await act(`/webhooks/${id}/rotate-secret`, { overlap_seconds: "-5" });
    expect(bad.status).toBe(422);
    expect(visibleText(bad.text)).toContain("overlap_seconds must be between 0 and 2592000; got -5");
    const r = await act(`/webhooks/${id}/rotate-secret`, { overlap_seconds: "60" });
    expect(r.status).toBe(200);
    const secret = /data-testid="new-secret">(whsec_[^<]+)</.exec(r.text)?.[1];
    expect(secret).toMatch(/^whsec_/);
    expect((await page(`/webhooks/${id}`)).text).not.toContain(secret!);
    expect((await audit())[0]).toMatchObject({ actor: "admin", action: "subscription.secret_rotated" });
  });

  it("repairs the head's payload, refusing one that is not JSON", async () => {
    const bad = await act(`/webhooks/${id}/repair`, { event_id: String(firstEvent), payload: "{nope" });
    expect(bad.status).toBe(400);
    expect(visibleText(bad.text)).toContain("The payload is not valid JSON");
    const ok = await act(`/webhooks/${id}/repair`, {
      event_id: String(firstEvent),
      payload: '{"n": 1, "fixed": true}',
      reason: "fixed by hand",
    });
    expect(ok.status).toBe(200);
    expect(visibleText(ok.text)).toContain(`Saved event ${firstEvent}'s corrected payload`);
  });

  it("shows the error log with the catalog message, filtered by subscription and error kind", async () => {
    const all = await page(`/webhooks/errors?subscription_id=${id}`);
    expect(all.status).toBe(200);
    const text = visibleText(all.text);
    expect(text).toMatch(/failed 4xx 400 receiver rejected the request HTTP 400/);
    expect(text).toContain("operator drop: order o-1 is <broken>");
    const fives = visibleText((await page("/webhooks/errors?error_kind=5xx")).text);
    expect(fives).toContain("No failed or DLQ deliveries match.");
    const dlqOnly = visibleText((await page(`/webhooks/errors?subscription_id=${id}&status=dlq`)).text);
    expect(dlqOnly).not.toContain("receiver rejected the request");
    const bad = await page("/webhooks/errors?error_kind=gremlins");
    expect(bad.status).toBe(400);
    expect(visibleText(bad.text)).toContain("error_kind must be one of dns, connection, tls");
    // Paged by cursor: nothing is older than the first delivery.
    expect(visibleText((await page(`/webhooks/errors?subscription_id=${id}&cursor=1`)).text)).toContain(
      "No failed or DLQ deliveries match.",
    );
  });

  it("shows the audit log, filtered by subscription", async () => {
    const r = await page(`/webhooks/audit?subscription_id=${id}`);
    expect(r.status).toBe(200);
    const text = visibleText(r.text);
    expect(text).toMatch(/admin subscription\.head_dropped .* order o-1 is <broken>/);
    expect(text).toMatch(/admin subscription\.created/);
    expect(text).not.toContain(other);
    const bad = await page("/webhooks/audit?job_id=abc");
    expect(bad.status).toBe(400);
    expect(visibleText(bad.text)).toContain('job_id must be a positive whole number; got "abc"');
  });

  it("starts a re-trigger dry run, then runs it, and shows its progress", async () => {
    const r = await page("/webhooks/retriggers");
    expect(r.status).toBe(200);
    expect(visibleText(r.text)).toContain("New re-trigger");
    const from = "/webhooks/retriggers";
    const missing = await c.submit(
      "/webhooks/retriggers",
      {
        tenant_id: "pages",
        event_type: "order.placed",
        selection: "aggregate_ids",
        ids: "",
        mode: "dry_run",
      },
      from,
    );
    expect(missing.status).toBe(400);
    expect(visibleText(missing.text)).toContain("List the aggregate IDs to re-send.");
    const form = {
      tenant_id: "pages",
      event_type: "order.placed",
      selection: "aggregate_ids",
      ids: "o-2, o-3, o-404",
    };
    const dry = await c.submit("/webhooks/retriggers", { ...form, mode: "dry_run" }, from);
    expect(dry.status).toBe(200);
    const preview = visibleText(dry.text);
    expect(preview).toContain("Dry run: nothing was sent");
    expect(preview).toMatch(/o-2 \d+ WOULD_TRIGGER/);
    expect(preview).toMatch(/o-404 WOULD_FAIL/);
    expect(preview).toContain("Run it: re-send 2 events");
    const before = rx.received.length;
    const run = await c.submit("/webhooks/retriggers", { ...form, mode: "run" }, from);
    expect(run.status).toBe(303);
    const job = run.headers.get("location")!;
    expect(job).toMatch(/^\/webhooks\/retriggers\/\d+$/);
    await eventually(
      async () => /2 of 3 done|3 of 3 done/.test(visibleText((await page(job)).text)) || undefined,
    );
    await rx.waitFor((x) => x.length === before + 2, 20_000, "the two re-sent orders");
    const done = visibleText((await page(job)).text);
    expect(done).toMatch(/o-404 failed/);
    const list = visibleText((await page("/webhooks/retriggers")).text);
    expect(list).toMatch(/job \d+ pages order.placed 3 aggregate IDs/);
  });
});
