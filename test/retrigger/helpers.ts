import pino from "pino";
import { afterAll, beforeAll, expect } from "vitest";
import type { Settings } from "../../src/config.ts";
import { RetriggerRunner, type RetriggerRunnerOptions } from "../../src/dispatch/retrigger-runner.ts";
import type { ItemView, JobView, Preview } from "../../src/service/retrigger.ts";
import { startTestHerald, type TestHerald } from "../support/herald.ts";
import { eventually, Receiver } from "../support/receiver.ts";
import type { StoreKind } from "../support/store.ts";

/** The API's views of a job, an item and a dry run (what the re-trigger routes answer with). */
export type Job = JobView;
export type Item = ItemView;
export type { Preview };

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

/** Short timings for a test Herald's re-trigger jobs and deliveries: retries and schedules within a second. */
export function retriggerSettings(requestTimeoutMs: number, leaseMs: number): Partial<Settings> {
  return { requestTimeoutMs, leaseMs, schedulerIntervalMs: 200, retryScheduleMs: [200, 200] };
}

/** A test Herald (API and dispatcher) and a receiver, set up by {@link useHeraldAndReceiver}. */
export interface HeraldAndReceiver {
  h: TestHerald;
  rx: Receiver;
}

/**
 * Starts a Herald with the API and dispatcher roles on a fresh `kind` store, and a receiver, before the
 * tests of the enclosing describe block; closes both after them. Read `h` and `rx` inside the tests.
 */
export function useHeraldAndReceiver(kind: StoreKind, settings: Partial<Settings>): HeraldAndReceiver {
  const env = {} as HeraldAndReceiver;
  beforeAll(async () => {
    env.h = await startTestHerald(kind, settings, { api: true, dispatcher: true });
    env.rx = await new Receiver().start();
  });
  afterAll(async () => {
    await env.h?.close();
    await env.rx?.close();
  });
  return env;
}

/** What a test sets on its own re-trigger runner. */
export type TestRunnerOptions = Pick<RetriggerRunnerOptions, "owner" | "beforeItem" | "retryDelayMs">;

/**
 * A re-trigger runner of the test's own on `h`'s store (on another connection pool where the store has one),
 * with test hooks such as `beforeItem`; not started.
 */
export async function testRunner(h: TestHerald, opts: TestRunnerOptions = {}): Promise<RetriggerRunner> {
  return new RetriggerRunner({
    db: (await h.store.connectAgain()) ?? h.store.db,
    settings: h.proc.settings,
    log: pino({ level: "silent" }),
    hooks: h.proc.ctx.hooks,
    ...opts,
  });
}

/**
 * Stops Herald's own re-trigger runner and makes a {@link testRunner} for `body` to start and drive; after
 * `body` (or its failure) stops that runner and starts Herald's again.
 */
export async function withTestRunner(
  h: TestHerald,
  opts: TestRunnerOptions,
  body: (runner: RetriggerRunner) => Promise<void>,
): Promise<void> {
  await h.proc.retriggerRunner!.stop();
  const runner = await testRunner(h, opts);
  try {
    await body(runner);
  } finally {
    await runner.stop();
    await h.proc.retriggerRunner!.start();
  }
}

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
