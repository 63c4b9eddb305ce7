import { expect } from "vitest";
import type { TestHerald } from "../support/herald.ts";
import { eventually, type Receiver } from "../support/receiver.ts";

export interface Job {
  job_id: number;
  tenant_id: string;
  event_type: string;
  subscription_id: string | null;
  status: string;
  total: number;
  completed: number;
  sent: number;
  skipped: number;
  failed: number;
  pending: number;
  interrupted: boolean;
  lease_owner: string | null;
  next_chunk_at: string | null;
  chunks_done: number;
  error_count: number;
  last_error: string | null;
  started_at: string | null;
  finished_at: string | null;
  created_by: string;
}

export interface Item {
  ordinal: number;
  requested_id: string;
  source_event_id: number | null;
  outcome: string;
  reason: string | null;
  detail: string | null;
  new_event_id: number | null;
  deliveries: number | null;
}

export interface Preview {
  dry_run: true;
  selection: Record<string, unknown>;
  total: number;
  would_trigger: number;
  would_skip: number;
  would_fail: number;
  plan: { chunks: number; batch_size: number; delay_ms: number; estimated_duration_ms: number };
  items: Array<{
    requested_id: string;
    source_event_id: number | null;
    outcome: "WOULD_TRIGGER" | "WOULD_SKIP" | "WOULD_FAIL";
    reason: string | null;
    detail: string | null;
    subscriptions: string[];
  }>;
}

export interface Err {
  error: { code: string; message: string };
}

export interface Audit {
  items: Array<{
    actor: string;
    action: string;
    job_id: number | null;
    reason: string | null;
    before: unknown;
    after: unknown;
  }>;
}

export const TYPE = "contract.executed";

/** A subscription of `tenant` on the receiver at `path`; the receiver trusts its secret. */
export async function subscribe(
  h: TestHerald,
  rx: Receiver,
  tenant: string,
  path: string,
  eventTypes: string[] = [TYPE],
): Promise<string> {
  const r = await h.api<{ subscription_id: string; secret: string }>("POST", "/v1/subscriptions", {
    tenant_id: tenant,
    url: rx.url(path),
    event_types: eventTypes,
    max_in_flight: 50,
  });
  expect(r.status).toBe(201);
  rx.trust(r.body.secret);
  return r.body.subscription_id;
}

/** One `contract.executed` event per aggregate, payload `{contract: <id>}`; returns the event ids. */
export async function emit(
  h: TestHerald,
  tenant: string,
  aggregates: readonly string[],
  type = TYPE,
): Promise<number[]> {
  const ids: number[] = [];
  for (let at = 0; at < aggregates.length; at += 1000) {
    const r = await h.api<{ events: Array<{ event_id: number }> }>("POST", "/v1/events/batch", {
      events: aggregates.slice(at, at + 1000).map((a) => ({
        tenant_id: tenant,
        event_type: type,
        aggregate_id: a,
        payload: { contract: a },
      })),
    });
    expect(r.status).toBe(202);
    ids.push(...r.body.events.map((e) => e.event_id));
  }
  return ids;
}

export async function getJob(h: TestHerald, id: number, token?: string): Promise<Job> {
  const r = await h.api<Job>("GET", `/v1/retriggers/${id}`, undefined, token);
  expect(r.status).toBe(200);
  return r.body;
}

export function waitJob(
  h: TestHerald,
  id: number,
  cond: (j: Job) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<Job> {
  return eventually(
    async () => {
      const j = await getJob(h, id);
      return cond(j) ? j : undefined;
    },
    timeoutMs,
    `job ${id}: ${what}`,
  );
}

/** Every item of a job (following the cursor), optionally of one outcome. */
export async function allItems(h: TestHerald, id: number, outcome?: string): Promise<Item[]> {
  const out: Item[] = [];
  let cursor: number | null = null;
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ limit: "1000" });
    if (outcome) q.set("outcome", outcome);
    if (cursor !== null) q.set("cursor", String(cursor));
    const r = await h.api<{ items: Item[]; next_cursor: number | null }>(
      "GET",
      `/v1/retriggers/${id}/items?${q}`,
    );
    expect(r.status).toBe(200);
    out.push(...r.body.items);
    cursor = r.body.next_cursor;
    if (cursor === null) break;
  }
  return out;
}

/** Rows in the tables a dry run must not touch. */
export async function rowCounts(h: TestHerald): Promise<Record<string, number>> {
  const r = await h.store.db.query<{ events: number; deliveries: number; jobs: number; items: number }>(
    `SELECT (SELECT count(*)::int FROM events) AS events, (SELECT count(*)::int FROM deliveries) AS deliveries,
            (SELECT count(*)::int FROM retrigger_jobs) AS jobs, (SELECT count(*)::int FROM retrigger_items) AS items`,
  );
  return r.rows[0]!;
}

export function contractOf(body: { data: unknown }): string {
  return (body.data as { contract: string }).contract;
}
