import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PanelClient, visibleText } from "../panel/client.ts";
import { ADMIN, startTestHerald, type TestHerald } from "../support/herald.ts";
import { rawRequest } from "../support/raw-request.ts";
import { STORE_KINDS } from "../support/store.ts";

/**
 * Regressions of security issue 18, items 3 and 4: each input below was a 500 or was silently changed.
 * Each must now be a 400/413/422 whose message names the field (or parameter) and the rule, and leave
 * no row behind.
 */

interface Case {
  name: string;
  method: string;
  /** Path with {sub}, {event} and {job} standing for real ids. Sent as written (no normalisation). */
  path: string;
  /** JSON text, or a value to stringify. */
  body?: unknown;
  status: number;
  message: RegExp;
}

const event = { tenant_id: "iv", event_type: "iv.e", payload: { a: 1 } };
const sub = { tenant_id: "iv", url: "http://127.0.0.1:9/iv", event_types: ["iv.e"] };
const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
const nulMsg = (field: string) => new RegExp(`${field}.*must not contain the NUL character`);
const surrogateMsg = (field: string) => new RegExp(`${field}.*lone UTF-16 surrogate`);
const digitsMsg = (name: string) =>
  new RegExp(`parameter "${name}" must be an integer written in decimal digits`);
const rangeMsg = (field: string) => new RegExp(`${field} must be from 1970-01-01T00:00:00Z to 9999-12-31`);
const exactMsg = (field: string) => new RegExp(`field "${field}" holds the number .* cannot hold exactly`);

const CASES: Case[] = [
  // NUL in text fields other than the event's own
  {
    name: "NUL in a subscription's tenant_id",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, tenant_id: "a\u0000" },
    status: 400,
    message: nulMsg('"tenant_id"'),
  },
  {
    name: "NUL in a description",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, description: "\u0000" },
    status: 400,
    message: nulMsg('"description"'),
  },
  {
    name: "NUL in event_types",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, event_types: ["x\u0000"] },
    status: 400,
    message: nulMsg('"event_types.0"'),
  },
  {
    name: "NUL in a PATCH description",
    method: "PATCH",
    path: "/v1/subscriptions/{sub}",
    body: { description: "\u0000" },
    status: 400,
    message: nulMsg('"description"'),
  },
  {
    name: "NUL in a PATCH reason",
    method: "PATCH",
    path: "/v1/subscriptions/{sub}",
    body: { status: "paused", reason: "r\u0000" },
    status: 400,
    message: nulMsg('"reason"'),
  },
  {
    name: "NUL in a token's tenant_id",
    method: "POST",
    path: "/v1/tokens",
    body: { tenant_id: "\u0000" },
    status: 400,
    message: nulMsg('"tenant_id"'),
  },
  {
    name: "NUL in a token's name",
    method: "POST",
    path: "/v1/tokens",
    body: { tenant_id: "iv", name: "\u0000" },
    status: 400,
    message: nulMsg('"name"'),
  },
  {
    name: "NUL in a drop-head reason",
    method: "POST",
    path: "/v1/subscriptions/{sub}/head/drop",
    body: { reason: "\u0000" },
    status: 400,
    message: nulMsg('"reason"'),
  },
  {
    name: "NUL in a job's cancel reason",
    method: "POST",
    path: "/v1/retriggers/{job}/cancel",
    body: { reason: "\u0000" },
    status: 400,
    message: nulMsg('"reason"'),
  },
  {
    name: "NUL in a repair payload",
    method: "POST",
    path: "/v1/events/{event}/repair",
    body: { payload: { a: "\u0000" } },
    status: 400,
    message: nulMsg('"payload.a"'),
  },
  {
    name: "NUL in a repair reason",
    method: "POST",
    path: "/v1/events/{event}/repair",
    body: { payload: 1, reason: "\u0000" },
    status: 400,
    message: nulMsg('"reason"'),
  },
  {
    name: "NUL in re-trigger aggregate_ids",
    method: "POST",
    path: "/v1/retriggers",
    body: { ...event, payload: undefined, aggregate_ids: ["a\u0000"] },
    status: 400,
    message: nulMsg('"aggregate_ids.0"'),
  },
  {
    name: "NUL in a path segment",
    method: "GET",
    path: "/v1/subscriptions/%00",
    status: 400,
    message: nulMsg('path parameter "id"'),
  },
  {
    name: "NUL in tenant_id query",
    method: "GET",
    path: "/v1/subscriptions?tenant_id=%00",
    status: 400,
    message: nulMsg('query parameter "tenant_id"'),
  },
  {
    name: "NUL in a string cursor",
    method: "GET",
    path: "/v1/subscriptions?cursor=%00",
    status: 400,
    message: nulMsg('query parameter "cursor"'),
  },
  {
    name: "NUL in an integer cursor",
    method: "GET",
    path: "/v1/deliveries?cursor=%00",
    status: 400,
    message: nulMsg('query parameter "cursor"'),
  },
  // lone surrogates
  {
    name: "lone surrogate in a payload value",
    method: "POST",
    path: "/v1/events",
    body: { ...event, payload: { a: "\ud800" } },
    status: 400,
    message: surrogateMsg('"payload.a"'),
  },
  {
    name: "lone surrogate in a payload key",
    method: "POST",
    path: "/v1/events",
    body: { ...event, payload: { "\udc00": 1 } },
    status: 400,
    message: surrogateMsg('"payload" has a key'),
  },
  {
    name: "lone surrogate in a batch payload",
    method: "POST",
    path: "/v1/events/batch",
    body: { events: [event, { ...event, payload: ["\udbff"] }] },
    status: 400,
    message: surrogateMsg('"events.1.payload.0"'),
  },
  {
    name: "lone surrogate in a repair payload",
    method: "POST",
    path: "/v1/events/{event}/repair",
    body: { payload: "\ud800x" },
    status: 400,
    message: surrogateMsg('"payload"'),
  },
  {
    name: "lone surrogate in a description",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, description: "\ud800" },
    status: 400,
    message: surrogateMsg('"description"'),
  },
  // year 0000 and out-of-range timestamps
  {
    name: "year 0000 occurred_at",
    method: "POST",
    path: "/v1/events",
    body: { ...event, occurred_at: "0000-01-01T00:00:00Z" },
    status: 400,
    message: rangeMsg("occurred_at"),
  },
  {
    name: "occurred_at past 9999 in UTC",
    method: "POST",
    path: "/v1/events",
    body: { ...event, occurred_at: "9999-12-31T23:00:00-05:00" },
    status: 400,
    message: rangeMsg("occurred_at"),
  },
  {
    name: "year 0000 in a batch",
    method: "POST",
    path: "/v1/events/batch",
    body: { events: [{ ...event, occurred_at: "0000-06-01T00:00:00Z" }] },
    status: 400,
    message: rangeMsg("events\\[0\\]\\.occurred_at"),
  },
  {
    name: "year 0000 since (DLQ replay)",
    method: "POST",
    path: "/v1/subscriptions/{sub}/dlq/replay",
    body: { since: "0000-01-01T00:00:00Z" },
    status: 400,
    message: rangeMsg("since"),
  },
  {
    name: "year 0000 since (deliveries)",
    method: "GET",
    path: "/v1/deliveries?since=0000-01-01T00:00:00Z",
    status: 400,
    message: rangeMsg("since"),
  },
  {
    name: "year 0000 re-trigger window",
    method: "POST",
    path: "/v1/retriggers",
    body: { tenant_id: "iv", event_type: "iv.e", occurred_after: "0000-01-01T00:00:00Z" },
    status: 400,
    message: rangeMsg("occurred_after"),
  },
  {
    name: "year 0000 skip_delivered_after",
    method: "POST",
    path: "/v1/retriggers",
    body: {
      tenant_id: "iv",
      event_type: "iv.e",
      event_ids: [1],
      skip_delivered_after: "0000-01-01T00:00:00Z",
    },
    status: 400,
    message: rangeMsg("skip_delivered_after"),
  },
  // ids beyond bigint
  {
    name: "event id beyond bigint",
    method: "GET",
    path: "/v1/events/99999999999999999999",
    status: 400,
    message: digitsMsg("event_id"),
  },
  {
    name: "event id beyond 2^53",
    method: "GET",
    path: "/v1/events/9007199254740993",
    status: 400,
    message: digitsMsg("event_id"),
  },
  {
    name: "cursor beyond bigint",
    method: "GET",
    path: "/v1/deliveries?cursor=99999999999999999999",
    status: 400,
    message: digitsMsg("cursor"),
  },
  {
    name: "audit cursor beyond bigint",
    method: "GET",
    path: "/v1/audit?cursor=99999999999999999999",
    status: 400,
    message: digitsMsg("cursor"),
  },
  {
    name: "job id beyond bigint",
    method: "GET",
    path: "/v1/retriggers/99999999999999999999",
    status: 400,
    message: digitsMsg("id"),
  },
  {
    name: "job id beyond bigint (cancel)",
    method: "POST",
    path: "/v1/retriggers/99999999999999999999/cancel",
    body: {},
    status: 400,
    message: digitsMsg("id"),
  },
  {
    name: "delivery id beyond bigint",
    method: "POST",
    path: "/v1/deliveries/99999999999999999999/replay",
    status: 400,
    message: digitsMsg("delivery_id"),
  },
  {
    name: "event_ids beyond bigint",
    method: "POST",
    path: "/v1/retriggers",
    body: '{"tenant_id":"iv","event_type":"iv.e","event_ids":[99999999999999999999]}',
    status: 400,
    message: exactMsg("event_ids.0"),
  },
  {
    name: "event_ids beyond 2^53 written as a float",
    method: "POST",
    path: "/v1/retriggers",
    body: '{"tenant_id":"iv","event_type":"iv.e","event_ids":[1e19]}',
    status: 400,
    message: /field "event_ids.0" must be at most 9007199254740991/,
  },
  {
    name: "DLQ replay event_ids beyond bigint",
    method: "POST",
    path: "/v1/subscriptions/{sub}/dlq/replay",
    body: '{"event_ids":[99999999999999999999]}',
    status: 400,
    message: exactMsg("event_ids.0"),
  },
  // nesting
  {
    name: "payload nested 4,500 levels",
    method: "POST",
    path: "/v1/events",
    body: `{"tenant_id":"iv","event_type":"iv.e","payload":${deep(4500)}}`,
    status: 400,
    message: /payload must not nest objects and arrays deeper than 64 levels/,
  },
  {
    name: "payload nested 65 levels",
    method: "POST",
    path: "/v1/events",
    body: `{"tenant_id":"iv","event_type":"iv.e","payload":${deep(65)}}`,
    status: 400,
    message: /payload must not nest .* 64 levels/,
  },
  {
    name: "batch payload nested 100,000 levels",
    method: "POST",
    path: "/v1/events/batch",
    body: `{"events":[{"tenant_id":"iv","event_type":"iv.e","payload":${deep(100_000)}}]}`,
    status: 400,
    message: /events\[0\]\.payload must not nest/,
  },
  {
    name: "repair payload nested 4,500 levels",
    method: "POST",
    path: "/v1/events/{event}/repair",
    body: `{"payload":${deep(4500)}}`,
    status: 400,
    message: /payload must not nest/,
  },
  // coerced types
  {
    name: "a number as tenant_id",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, tenant_id: 5 },
    status: 400,
    message: /field "tenant_id" must be string/,
  },
  {
    name: "a string as pending_ceiling",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, pending_ceiling: "100" },
    status: 400,
    message: /field "pending_ceiling" must be integer/,
  },
  {
    name: "a string as event_types",
    method: "POST",
    path: "/v1/subscriptions",
    body: { ...sub, event_types: "x" },
    status: 400,
    message: /field "event_types" must be array/,
  },
  {
    name: "a number as an event's tenant_id",
    method: "POST",
    path: "/v1/events",
    body: { ...event, tenant_id: 5 },
    status: 400,
    message: /field "tenant_id" must be string/,
  },
  {
    name: "a string as dry_run",
    method: "POST",
    path: "/v1/retriggers",
    body: { tenant_id: "iv", event_type: "iv.e", event_ids: [1], dry_run: "true" },
    status: 400,
    message: /field "dry_run" must be boolean/,
  },
  {
    name: "a string as overlap_seconds",
    method: "POST",
    path: "/v1/subscriptions/{sub}/rotate-secret",
    body: { overlap_seconds: "10" },
    status: 400,
    message: /field "overlap_seconds" must be integer/,
  },
  {
    name: "an exponent as an event id",
    method: "GET",
    path: "/v1/events/1e3",
    status: 400,
    message: digitsMsg("event_id"),
  },
  {
    name: "hex as an event id",
    method: "GET",
    path: "/v1/events/0x10",
    status: 400,
    message: digitsMsg("event_id"),
  },
  {
    name: "a sign on an event id",
    method: "GET",
    path: "/v1/events/+1",
    status: 400,
    message: digitsMsg("event_id"),
  },
  {
    name: "a blank before an event id",
    method: "GET",
    path: "/v1/events/%201",
    status: 400,
    message: digitsMsg("event_id"),
  },
  {
    name: "an exponent as a limit",
    method: "GET",
    path: "/v1/subscriptions?limit=1e2",
    status: 400,
    message: digitsMsg("limit"),
  },
  {
    name: "a limit given twice",
    method: "GET",
    path: "/v1/subscriptions?limit=1&limit=2",
    status: 400,
    message: /parameter "limit" .* got several values/,
  },
  {
    name: "a payload integer beyond 2^53",
    method: "POST",
    path: "/v1/events",
    body: '{"tenant_id":"iv","event_type":"iv.e","payload":{"n":9007199254740993}}',
    status: 400,
    message: exactMsg("payload.n"),
  },
  {
    name: "a payload number beyond a double",
    method: "POST",
    path: "/v1/events",
    body: '{"tenant_id":"iv","event_type":"iv.e","payload":[1e400]}',
    status: 400,
    message: exactMsg("payload.0"),
  },
  {
    name: "a payload number that underflows",
    method: "POST",
    path: "/v1/events",
    body: '{"tenant_id":"iv","event_type":"iv.e","payload":{"x":-2.5e-400}}',
    status: 400,
    message: exactMsg("payload.x"),
  },
  {
    name: "a batch payload integer beyond 2^53",
    method: "POST",
    path: "/v1/events/batch",
    body: `{"events":[${JSON.stringify(event)},{"tenant_id":"iv","event_type":"iv.e","payload":{"a":{"b":[0,-12345678901234567890]}}}]}`,
    status: 400,
    message: exactMsg("events.1.payload.a.b.1"),
  },
  {
    name: "a repair payload integer beyond 2^53",
    method: "POST",
    path: "/v1/events/{event}/repair",
    body: '{"payload":{"n":18446744073709551615}}',
    status: 400,
    message: exactMsg("payload.n"),
  },
];

const send = (base: string, method: string, path: string, body?: string) =>
  rawRequest(base, method, path, ADMIN, body);

const TABLES = ["events", "deliveries", "subscriptions", "tokens", "retrigger_jobs", "audit_log"];

describe.each(STORE_KINDS)("input validation regressions on the %s store", (kind) => {
  let h: TestHerald;
  const ids: Record<string, string> = {};
  const counts = async () => {
    const out: Record<string, number> = {};
    for (const t of TABLES) {
      out[t] = Number((await h.store.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
    }
    return out;
  };

  beforeAll(async () => {
    h = await startTestHerald(kind);
    const s = await h.api<{ subscription_id: string }>("POST", "/v1/subscriptions", {
      ...sub,
      ordering: "ordered",
    });
    const e = await h.api<{ event_id: number }>("POST", "/v1/events", event);
    const j = await h.api<{ job_id: number }>("POST", "/v1/retriggers", {
      tenant_id: "iv",
      event_type: "iv.e",
      event_ids: [e.body.event_id],
    });
    expect([s.status, e.status, j.status]).toEqual([201, 202, 202]);
    Object.assign(ids, {
      sub: s.body.subscription_id,
      event: String(e.body.event_id),
      job: String(j.body.job_id),
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each(CASES)("$name: $status naming the field", async (c) => {
    const path = c.path.replace(/\{(sub|event|job)\}/g, (_m, k: string) => ids[k]!);
    const body =
      c.body === undefined ? undefined : typeof c.body === "string" ? c.body : JSON.stringify(c.body);
    const before = await counts();
    const r = await send(h.url, c.method, path, body);
    expect(r.status, r.text).toBe(c.status);
    const parsed = JSON.parse(r.text) as { error: { code: string; message: string } };
    expect(Object.keys(parsed)).toEqual(["error"]);
    expect(parsed.error.message).toMatch(c.message);
    expect(await counts()).toEqual(before);
  });

  it("the panel refuses NUL in its paths, queries and forms, and inexact numbers in a repair, with a 400", async () => {
    const panel = new PanelClient(h.url);
    await panel.login();
    const before = await counts();
    for (const path of ["/webhooks/%00", "/webhooks/?tenant=%00", "/webhooks/audit?subscription_id=a%00"]) {
      const r = await panel.get(path);
      expect(r.status, path).toBe(400);
      expect(visibleText(r.text)).toMatch(/must not contain the NUL character/);
    }
    const page = `/webhooks/${ids.sub}`;
    const drop = await panel.submit(`${page}/drop`, { reason: "r\u0000" }, page);
    expect(drop.status).toBe(400);
    expect(visibleText(drop.text)).toMatch(/field "reason" must not contain the NUL character/);
    const repair = await panel.submit(
      `${page}/repair`,
      { event_id: ids.event!, payload: '{"n": 9007199254740993}', reason: "fix" },
      page,
    );
    expect(repair.status).toBe(400);
    expect(visibleText(repair.text)).toMatch(/9007199254740993 at n cannot be kept exactly/);
    const deep = await panel.submit(
      `${page}/repair`,
      { event_id: ids.event!, payload: "[".repeat(5000) + "]".repeat(5000) },
      page,
    );
    expect(deep.status).toBe(400);
    expect(visibleText(deep.text)).toMatch(/payload must not nest objects and arrays deeper than 64 levels/);
    expect(await counts()).toEqual(before);
  });

  it("keeps what JavaScript holds exactly: safe integers, ordinary fractions, large doubles, emoji", async () => {
    const text =
      '{"tenant_id":"iv","event_type":"iv.e","payload":{"max":9007199254740991,"min":-9007199254740991,"avogadro":6.02214076e23,"tiny":5e-324,"pi":0.1,"zero":0e-400,"s":"\\ud83d\\ude00 9007199254740993"}}';
    const r = await send(h.url, "POST", "/v1/events", text);
    expect(r.status, r.text).toBe(202);
    const got = await h.api<{ event: { payload: Record<string, unknown> } }>(
      "GET",
      `/v1/events/${(JSON.parse(r.text) as { event_id: number }).event_id}`,
    );
    expect(got.body.event.payload).toEqual({
      max: 9007199254740991,
      min: -9007199254740991,
      avogadro: 6.02214076e23,
      tiny: 5e-324,
      pi: 0.1,
      zero: 0,
      s: "😀 9007199254740993",
    });
  });

  it("accepts the edges: 64 levels of payload, the first and last accepted instants, leading zeros in ids", async () => {
    const edge = await send(
      h.url,
      "POST",
      "/v1/events/batch",
      JSON.stringify({
        events: [
          { ...event, payload: JSON.parse(deep(64)) },
          { ...event, occurred_at: "1970-01-01T00:00:00Z" },
          { ...event, occurred_at: "9999-12-31T23:59:59.999Z" },
        ],
      }),
    );
    expect(edge.status, edge.text).toBe(202);
    const ids2 = (JSON.parse(edge.text) as { events: Array<{ event_id: number }> }).events.map(
      (e) => e.event_id,
    );
    const last = await h.api<{ event: { occurred_at: string } }>("GET", `/v1/events/00${ids2[2]}`);
    expect(last.status).toBe(200);
    expect(last.body.event.occurred_at).toBe("9999-12-31T23:59:59.999Z");
    const first = await h.api<{ event: { occurred_at: string } }>("GET", `/v1/events/${ids2[1]}`);
    expect(first.body.event.occurred_at).toBe("1970-01-01T00:00:00.000Z");
  });
});
