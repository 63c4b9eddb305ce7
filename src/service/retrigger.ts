import type { Logger } from "pino";
import {
  boundViolation,
  canCancel,
  canResume,
  chunkRetryDelayMs,
  classifyItem,
  type Decision,
  type DryRunOutcome,
  dryRunOutcome,
  type ItemFacts,
  MAX_CHUNK_ERRORS,
  MAX_JOB_ITEMS,
  outcomeOf,
  type Plan,
  planJob,
  RETRIGGER_BOUNDS,
  type Resolution,
} from "../domain/retrigger.ts";
import { HeraldError, notFound } from "../errors.ts";
import { insertAudit } from "../store/audit.ts";
import type { Db, Queryable } from "../store/db.ts";
import type { NewEvent } from "../store/events.ts";
import {
  type ClaimedJob,
  claimJob,
  completeJob,
  deliveredSince,
  fenceAndCount,
  findJob,
  type ItemRow,
  insertItems,
  insertJob,
  type JobStatus,
  listItems,
  listJobs,
  matchingSubscriptions,
  type NewItem,
  type PendingItem,
  pendingItems,
  type RetriggerJobRow,
  recordItem,
  recordItems,
  recordJobError,
  reemittedByJob,
  releaseJob,
  resolveAggregateIds,
  resolveEventIds,
  type SelectionKind,
  type SourceKey,
  type StoredOutcome,
  selectWindow,
  setJobStatus,
} from "../store/retrigger.ts";
import { refreshStatistics } from "../store/statistics.ts";
import { findSubscription } from "../store/subscriptions.ts";
import type { NewAudit } from "../store/types.ts";
import { type Actor, actorName, type ServiceContext, type ServiceHooks, tenantScope } from "./context.ts";
import { acceptWith } from "./events.ts";
import { timestamp } from "./input.ts";
import { toPage } from "./page.ts";

// ---- Views ------------------------------------------------------------------------------------------

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export interface JobView {
  job_id: number;
  tenant_id: string;
  event_type: string;
  selection: Record<string, unknown>;
  subscription_id: string | null;
  batch_size: number;
  delay_ms: number;
  chunk_budget_ms: number;
  skip_delivered_after: string | null;
  status: JobStatus;
  total: number;
  completed: number;
  sent: number;
  skipped: number;
  failed: number;
  pending: number;
  chunks_done: number;
  interrupted: boolean;
  lease_owner: string | null;
  lease_expires_at: string | null;
  next_chunk_at: string | null;
  error_count: number;
  last_error: string | null;
  created_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

export function viewJob(j: RetriggerJobRow): JobView {
  const completed = j.sent + j.skipped + j.failed;
  const live = j.status === "pending" || j.status === "running";
  return {
    job_id: j.job_id,
    tenant_id: j.tenant_id,
    event_type: j.event_type,
    selection: j.selection,
    subscription_id: j.subscription_id,
    batch_size: j.batch_size,
    delay_ms: j.delay_ms,
    chunk_budget_ms: j.chunk_budget_ms,
    skip_delivered_after: iso(j.skip_delivered_after),
    status: j.status,
    total: j.total,
    completed,
    sent: j.sent,
    skipped: j.skipped,
    failed: j.failed,
    pending: j.total - completed,
    chunks_done: j.chunks_done,
    interrupted: j.interrupted,
    lease_owner: j.lease_owner,
    lease_expires_at: iso(j.lease_expires_at),
    next_chunk_at: live ? iso(j.next_run_at) : null,
    error_count: j.error_count,
    last_error: j.last_error,
    created_by: j.created_by,
    created_at: j.created_at.toISOString(),
    started_at: iso(j.started_at),
    finished_at: iso(j.finished_at),
    updated_at: j.updated_at.toISOString(),
  };
}

export interface ItemView {
  ordinal: number;
  requested_id: string;
  source_event_id: number | null;
  outcome: StoredOutcome;
  reason: string | null;
  detail: string | null;
  new_event_id: number | null;
  deliveries: number | null;
  processed_at: string | null;
}

export function viewItem(i: ItemRow): ItemView {
  return {
    ordinal: i.ordinal,
    requested_id: i.requested_id,
    source_event_id: i.source_event_id,
    outcome: i.outcome,
    reason: i.reason,
    detail: i.detail,
    new_event_id: i.new_event_id,
    deliveries: i.deliveries,
    processed_at: iso(i.processed_at),
  };
}

export interface PreviewItem {
  requested_id: string;
  source_event_id: number | null;
  outcome: DryRunOutcome;
  reason: string | null;
  detail: string | null;
  /** The subscriptions it would go to (WOULD_TRIGGER). */
  subscriptions: string[];
}

export interface Preview {
  dry_run: true;
  tenant_id: string;
  event_type: string;
  selection: Record<string, unknown>;
  subscription_id: string | null;
  skip_delivered_after: string | null;
  total: number;
  would_trigger: number;
  would_skip: number;
  would_fail: number;
  plan: Plan;
  items: PreviewItem[];
}

// ---- Creating a job (or its dry run) ----------------------------------------------------------------

export interface CreateRetriggerInput {
  tenant_id?: string | undefined;
  event_type: string;
  occurred_after?: string | undefined;
  occurred_before?: string | undefined;
  aggregate_ids?: string[] | undefined;
  event_ids?: number[] | undefined;
  subscription_id?: string | undefined;
  batch_size?: number | undefined;
  delay_ms?: number | undefined;
  chunk_budget_ms?: number | undefined;
  skip_delivered_after?: string | undefined;
  dry_run?: boolean | undefined;
}

interface Normalised {
  tenantId: string;
  eventType: string;
  kind: SelectionKind;
  selection: Record<string, unknown>;
  after: Date | null;
  before: Date | null;
  ids: string[];
  subscriptionId: string | null;
  batchSize: number;
  delayMs: number;
  chunkBudgetMs: number;
  skipDeliveredAfter: Date | null;
}

function resolveTenant(actor: Actor, requested: string | undefined): string {
  const scope = tenantScope(actor);
  if (scope !== null) {
    if (requested !== undefined && requested !== scope) {
      throw new HeraldError("forbidden", `tenant_id "${requested}" is not the token's tenant`);
    }
    return scope;
  }
  if (!requested) throw new HeraldError("invalid_field", "tenant_id is required with the admin token");
  return requested;
}

function date(field: string, v: string | undefined): Date | null {
  return timestamp(field, v) ?? null;
}

function bounded(field: keyof typeof RETRIGGER_BOUNDS, v: number | undefined): number {
  const value = v ?? RETRIGGER_BOUNDS[field].default;
  const problem = boundViolation(field, value);
  if (problem) throw new HeraldError("out_of_range", problem);
  return value;
}

function distinct<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function normalise(actor: Actor, input: CreateRetriggerInput): Normalised {
  const tenantId = resolveTenant(actor, input.tenant_id);
  const batchSize = bounded("batch_size", input.batch_size);
  const delayMs = bounded("delay_ms", input.delay_ms);
  const chunkBudgetMs = bounded("chunk_budget_ms", input.chunk_budget_ms);
  const after = date("occurred_after", input.occurred_after);
  const before = date("occurred_before", input.occurred_before);
  const skipDeliveredAfter = date("skip_delivered_after", input.skip_delivered_after);
  const given = [
    input.aggregate_ids !== undefined ? "aggregate_ids" : null,
    input.event_ids !== undefined ? "event_ids" : null,
    after !== null || before !== null ? "occurred_after/occurred_before" : null,
  ].filter((x): x is string => x !== null);
  if (given.length !== 1) {
    throw new HeraldError(
      "invalid_field",
      given.length === 0
        ? "give a selection: aggregate_ids, event_ids, or an occurred_after/occurred_before window"
        : `give one selection, not several: ${given.join(", ")}`,
    );
  }
  const common = {
    tenantId,
    eventType: input.event_type,
    subscriptionId: input.subscription_id ?? null,
    batchSize,
    delayMs,
    chunkBudgetMs,
    skipDeliveredAfter,
    after,
    before,
  };
  const checkCount = (field: string, n: number) => {
    if (n < 1 || n > MAX_JOB_ITEMS) {
      throw new HeraldError(
        "out_of_range",
        `${field} must list between 1 and ${MAX_JOB_ITEMS} IDs; got ${n}`,
      );
    }
  };
  if (input.aggregate_ids !== undefined) {
    checkCount("aggregate_ids", input.aggregate_ids.length);
    const ids = distinct(input.aggregate_ids);
    return {
      ...common,
      kind: "aggregate_ids",
      ids,
      selection: {
        kind: "aggregate_ids",
        ids: ids.length,
        duplicates: input.aggregate_ids.length - ids.length,
      },
    };
  }
  if (input.event_ids !== undefined) {
    checkCount("event_ids", input.event_ids.length);
    const ids = distinct(input.event_ids.map(String));
    return {
      ...common,
      kind: "event_ids",
      ids,
      selection: { kind: "event_ids", ids: ids.length, duplicates: input.event_ids.length - ids.length },
    };
  }
  if (after !== null && before !== null && after.getTime() >= before.getTime()) {
    throw new HeraldError(
      "out_of_range",
      `occurred_after (${after.toISOString()}) must be earlier than occurred_before (${before.toISOString()})`,
    );
  }
  return {
    ...common,
    kind: "window",
    ids: [],
    selection: { kind: "window", occurred_after: iso(after), occurred_before: iso(before) },
  };
}

interface Resolved {
  requested_id: string;
  source_event_id: number | null;
  resolution: Resolution;
}

/**
 * Resolves the selection to items, in order. The tenant guard lives here: an ID of another tenant
 * never resolves to an event. A tenant token is told "not found" (it may not learn what other tenants
 * have); the admin is told "other tenant".
 */
async function resolveSelection(
  q: Queryable,
  n: Normalised,
  revealOtherTenant: boolean,
): Promise<Resolved[]> {
  const hidden = (id: string, what: string): Resolution =>
    revealOtherTenant
      ? { kind: "other_tenant", detail: `${what} ${id} belongs to another tenant, not ${n.tenantId}` }
      : { kind: "not_found", detail: `no ${n.eventType} ${what} ${id} in tenant ${n.tenantId}` };
  if (n.kind === "aggregate_ids") {
    const rows = await resolveAggregateIds(q, n.tenantId, n.eventType, n.ids);
    return rows.map((r) => ({
      requested_id: r.requested_id,
      source_event_id: r.event_id,
      resolution:
        r.event_id !== null
          ? { kind: "found", event_id: r.event_id, aggregate_id: r.requested_id }
          : r.other_tenant
            ? hidden(r.requested_id, "aggregate")
            : {
                kind: "not_found",
                detail: `no ${n.eventType} event for aggregate ${r.requested_id} in tenant ${n.tenantId}`,
              },
    }));
  }
  if (n.kind === "event_ids") {
    const rows = await resolveEventIds(q, n.ids.map(Number));
    return rows.map((r): Resolved => {
      const id = String(r.requested);
      if (r.event_id === null) {
        return {
          requested_id: id,
          source_event_id: null,
          resolution: { kind: "not_found", detail: `no event ${id}` },
        };
      }
      if (r.tenant_id !== n.tenantId)
        return { requested_id: id, source_event_id: null, resolution: hidden(id, "event") };
      if (r.event_type !== n.eventType) {
        return {
          requested_id: id,
          source_event_id: null,
          resolution: {
            kind: "other_event_type",
            detail: `event ${id} is a ${r.event_type}, not a ${n.eventType}`,
          },
        };
      }
      return {
        requested_id: id,
        source_event_id: r.event_id,
        resolution: { kind: "found", event_id: r.event_id, aggregate_id: r.aggregate_id },
      };
    });
  }
  const rows = await selectWindow(q, {
    tenantId: n.tenantId,
    eventType: n.eventType,
    after: n.after,
    before: n.before,
    limit: MAX_JOB_ITEMS + 1,
  });
  if (rows.length > MAX_JOB_ITEMS) {
    throw new HeraldError(
      "out_of_range",
      `the window matches more than ${MAX_JOB_ITEMS} events (the most one job may hold); narrow occurred_after/occurred_before`,
    );
  }
  return rows.map((r) => ({
    requested_id: String(r.event_id),
    source_event_id: r.event_id,
    resolution: { kind: "found", event_id: r.event_id, aggregate_id: r.aggregate_id },
  }));
}

/** Checks the job's subscription: visible to the actor, of the job's tenant, receiving the event type. */
async function checkSubscription(q: Queryable, actor: Actor, n: Normalised): Promise<void> {
  if (n.subscriptionId === null) return;
  const s = await findSubscription(q, n.subscriptionId, tenantScope(actor));
  if (!s) throw notFound("subscription", n.subscriptionId);
  if (s.tenant_id !== n.tenantId) {
    throw new HeraldError(
      "invalid_field",
      `subscription_id ${n.subscriptionId} belongs to tenant ${s.tenant_id}, not ${n.tenantId}`,
    );
  }
  if (!s.event_types.includes("*") && !s.event_types.includes(n.eventType)) {
    throw new HeraldError(
      "invalid_field",
      `subscription_id ${n.subscriptionId} does not receive ${n.eventType} (its event_types: ${s.event_types.join(", ")})`,
    );
  }
}

/** Rows per skip-rule query. */
const SKIP_QUERY_BATCH = 5000;

async function deliveredSinceAll(
  q: Queryable,
  f: { eventType: string; since: Date; subscriptionIds: readonly string[]; items: SourceKey[] },
): Promise<Map<number, Map<string, Date>>> {
  const out = new Map<number, Map<string, Date>>();
  for (let at = 0; at < f.items.length; at += SKIP_QUERY_BATCH) {
    const part = await deliveredSince(q, { ...f, items: f.items.slice(at, at + SKIP_QUERY_BATCH) });
    for (const [k, v] of part) out.set(k, v);
  }
  return out;
}

const NONE = new Map<string, Date>();

/** Creates a job (202), or with `dry_run` answers what it would do and writes nothing. */
export async function createRetrigger(
  ctx: ServiceContext,
  actor: Actor,
  input: CreateRetriggerInput,
): Promise<{ dryRun: true; preview: Preview } | { dryRun: false; job: JobView }> {
  const n = normalise(actor, input);
  await checkSubscription(ctx.db, actor, n);
  await refreshStatistics(ctx.db);
  const resolved = await resolveSelection(ctx.db, n, actor.kind !== "tenant");
  if (input.dry_run) return { dryRun: true, preview: await preview(ctx.db, n, resolved) };
  if (resolved.length === 0) {
    throw new HeraldError("out_of_range", "the selection matches no events (a job needs at least 1 item)");
  }
  const items: NewItem[] = resolved.map((r, i) =>
    r.resolution.kind === "found"
      ? {
          ordinal: i + 1,
          requested_id: r.requested_id,
          source_event_id: r.source_event_id,
          outcome: "pending",
          reason: null,
          detail: null,
        }
      : {
          ordinal: i + 1,
          requested_id: r.requested_id,
          source_event_id: null,
          outcome: "failed",
          reason: r.resolution.kind,
          detail: r.resolution.detail,
        },
  );
  const job = await ctx.db.transaction(async (tx) => {
    const j = await insertJob(tx, {
      tenant_id: n.tenantId,
      event_type: n.eventType,
      selection_kind: n.kind,
      selection: n.selection,
      occurred_after: n.after,
      occurred_before: n.before,
      subscription_id: n.subscriptionId,
      batch_size: n.batchSize,
      delay_ms: n.delayMs,
      chunk_budget_ms: n.chunkBudgetMs,
      skip_delivered_after: n.skipDeliveredAfter,
      total: items.length,
      failed: items.filter((i) => i.outcome === "failed").length,
      created_by: actorName(actor),
    });
    await insertItems(tx, j.job_id, items);
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "retrigger.created",
        tenant_id: j.tenant_id,
        job_id: j.job_id,
        after: {
          status: j.status,
          event_type: j.event_type,
          selection: j.selection,
          subscription_id: j.subscription_id,
          total: j.total,
          failed: j.failed,
          batch_size: j.batch_size,
          delay_ms: j.delay_ms,
          skip_delivered_after: iso(j.skip_delivered_after),
        },
      },
    ]);
    return j;
  });
  ctx.hooks.retriggerQueued?.();
  return { dryRun: false, job: viewJob(job) };
}

async function preview(q: Queryable, n: Normalised, resolved: readonly Resolved[]): Promise<Preview> {
  const targets = await matchingSubscriptions(q, n.tenantId, n.eventType, n.subscriptionId);
  const keys: SourceKey[] = [];
  resolved.forEach((r, i) => {
    if (r.resolution.kind === "found") {
      keys.push({ key: i, source_event_id: r.resolution.event_id, aggregate_id: r.resolution.aggregate_id });
    }
  });
  const delivered =
    n.skipDeliveredAfter !== null && targets.length > 0
      ? await deliveredSinceAll(q, {
          eventType: n.eventType,
          since: n.skipDeliveredAfter,
          subscriptionIds: targets,
          items: keys,
        })
      : new Map<number, Map<string, Date>>();
  const counts = { WOULD_TRIGGER: 0, WOULD_SKIP: 0, WOULD_FAIL: 0 };
  const items = resolved.map((r, i): PreviewItem => {
    const d = classifyItem({
      resolution: r.resolution,
      targets,
      skipDeliveredAfter: n.skipDeliveredAfter,
      deliveredSince: delivered.get(i) ?? NONE,
      doneByJobAs: null,
    });
    const outcome = dryRunOutcome(d);
    counts[outcome] += 1;
    return {
      requested_id: r.requested_id,
      source_event_id: r.source_event_id,
      outcome,
      reason: d.kind === "trigger" ? null : d.reason,
      detail: d.detail,
      subscriptions: d.kind === "trigger" ? d.subscriptions : [],
    };
  });
  return {
    dry_run: true,
    tenant_id: n.tenantId,
    event_type: n.eventType,
    selection: n.selection,
    subscription_id: n.subscriptionId,
    skip_delivered_after: iso(n.skipDeliveredAfter),
    total: items.length,
    would_trigger: counts.WOULD_TRIGGER,
    would_skip: counts.WOULD_SKIP,
    would_fail: counts.WOULD_FAIL,
    plan: planJob({
      items: items.length,
      batchSize: n.batchSize,
      delayMs: n.delayMs,
      chunkBudgetMs: n.chunkBudgetMs,
    }),
    items,
  };
}

// ---- Reading and operating jobs ---------------------------------------------------------------------

async function visibleJob(
  q: Queryable,
  actor: Actor,
  id: number,
  forUpdate = false,
): Promise<RetriggerJobRow> {
  const j = await findJob(q, id, tenantScope(actor), { forUpdate });
  if (!j) throw notFound("re-trigger job", id);
  return j;
}

export async function getRetrigger(ctx: ServiceContext, actor: Actor, id: number): Promise<JobView> {
  return viewJob(await visibleJob(ctx.db, actor, id));
}

export async function listRetriggers(
  ctx: ServiceContext,
  actor: Actor,
  opts: { status?: JobStatus | undefined; before?: number | undefined; limit: number },
): Promise<{ items: JobView[]; next_cursor: number | null }> {
  const rows = await listJobs(ctx.db, {
    tenantId: tenantScope(actor),
    status: opts.status,
    before: opts.before,
    limit: opts.limit + 1,
  });
  const page = toPage(rows, opts.limit, (r) => r.job_id);
  return { items: page.items.map(viewJob), next_cursor: page.next_cursor };
}

export async function listRetriggerItems(
  ctx: ServiceContext,
  actor: Actor,
  id: number,
  opts: { outcome?: StoredOutcome | undefined; after?: number | undefined; limit: number },
): Promise<{ items: ItemView[]; next_cursor: number | null }> {
  await visibleJob(ctx.db, actor, id);
  const rows = await listItems(ctx.db, id, {
    outcome: opts.outcome,
    after: opts.after,
    limit: opts.limit + 1,
  });
  const page = toPage(rows, opts.limit, (r) => r.ordinal);
  return { items: page.items.map(viewItem), next_cursor: page.next_cursor };
}

const leaseState = (j: RetriggerJobRow) => ({
  status: j.status,
  lease_owner: j.lease_owner,
  lease_expires_at: iso(j.lease_expires_at),
});

/**
 * Resume: the job runs again from its pending items, now. A failed job goes back to running; a job
 * whose chunk owner vanished is released at once (no wait for the lease to expire). A live owner, if
 * any, loses the job at its next group of items (every group's transaction checks the lease), so there is never more than one.
 */
export async function resumeRetrigger(
  ctx: ServiceContext,
  actor: Actor,
  id: number,
  reason?: string,
): Promise<JobView> {
  const job = await ctx.db.transaction(async (tx) => {
    const current = await visibleJob(tx, actor, id, true);
    if (!canResume(current.status)) {
      throw new HeraldError(
        "conflict",
        `re-trigger job ${id} is ${current.status}; only pending, running or failed jobs can be resumed` +
          (current.status === "cancelled"
            ? " (a new job with skip_delivered_after repeats nothing already sent)"
            : ""),
      );
    }
    const next: JobStatus =
      current.status === "failed" ? (current.started_at ? "running" : "pending") : current.status;
    const updated = await setJobStatus(tx, id, next, { finished: false });
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "retrigger.resumed",
        tenant_id: current.tenant_id,
        job_id: id,
        reason: reason ?? null,
        before: {
          ...leaseState(current),
          pending: current.total - current.sent - current.skipped - current.failed,
        },
        after: leaseState(updated),
      },
    ]);
    return updated;
  });
  ctx.hooks.retriggerQueued?.();
  return viewJob(job);
}

/** Cancel: the job stops; its pending items stay pending (listed), nothing more is sent. */
export async function cancelRetrigger(
  ctx: ServiceContext,
  actor: Actor,
  id: number,
  reason?: string,
): Promise<JobView> {
  const job = await ctx.db.transaction(async (tx) => {
    const current = await visibleJob(tx, actor, id, true);
    if (!canCancel(current.status)) {
      throw new HeraldError("conflict", `re-trigger job ${id} is already ${current.status}`);
    }
    const updated = await setJobStatus(tx, id, "cancelled", { finished: true });
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "retrigger.cancelled",
        tenant_id: current.tenant_id,
        job_id: id,
        reason: reason ?? null,
        before: leaseState(current),
        after: {
          status: "cancelled",
          pending: current.total - current.sent - current.skipped - current.failed,
        },
      },
    ]);
    return updated;
  });
  return viewJob(job);
}

// ---- Running a job (the dispatcher's RetriggerRunner) ----------------------------------------------

export interface RunnerContext {
  db: Db;
  log: Logger;
  hooks: ServiceHooks;
  owner: string;
  leaseMs: number;
  /** Back-off before a failed chunk is tried again (default: domain chunkRetryDelayMs). */
  retryDelayMs?: ((errors: number) => number) | undefined;
}

export interface ChunkControl {
  /** Stop after the current group of items and release the job (graceful stop). */
  stopping(): boolean;
  /** Stop at once and leave the lease as it is (a crash, for tests). */
  killed(): boolean;
  /**
   * Called once before each item, as its group is formed, before the group's transaction starts (tests
   * stop a runner there with it: the group is then not written).
   */
  beforeItem?: ((jobId: number, ordinal: number) => Promise<void> | void) | undefined;
}

export type ChunkResult = "completed" | "released" | "lease_lost" | "abandoned" | "error" | "failed";

class LeaseLost extends Error {}
class TargetsChanged extends Error {}
class AlreadyProcessed extends Error {}

const SYSTEM = "system";

/** Takes the lease on the next due job (auditing a start or a take-over in the same transaction). */
export async function claimNextJob(rc: RunnerContext): Promise<ClaimedJob | null> {
  return rc.db.transaction(async (tx) => {
    const c = await claimJob(tx, rc.owner, rc.leaseMs);
    if (!c) return null;
    const audits: NewAudit[] = [];
    if (c.prev_status === "pending") {
      audits.push({
        actor: SYSTEM,
        action: "retrigger.started",
        tenant_id: c.job.tenant_id,
        job_id: c.job.job_id,
        reason: `taken up by dispatcher ${rc.owner}`,
        before: { status: "pending" },
        after: { status: "running", lease_owner: rc.owner },
      });
    }
    if (c.recovered_from !== null) {
      audits.push({
        actor: SYSTEM,
        action: "retrigger.lease_recovered",
        tenant_id: c.job.tenant_id,
        job_id: c.job.job_id,
        reason: `the lease of ${c.recovered_from} expired without a release; continued by ${rc.owner}`,
        before: { lease_owner: c.recovered_from },
        after: { lease_owner: rc.owner },
      });
    }
    await insertAudit(tx, audits);
    return c;
  });
}

/**
 * Items per transaction: a chunk's items are written in groups of up to this many (never more than the
 * job's batch_size), each group in one transaction, so a commit (and its WAL flush) is shared by the group.
 */
export const ITEMS_PER_TRANSACTION = 50;

/**
 * Runs one chunk of a claimed job: up to batch_size pending items, in order, within the chunk's time
 * budget, in groups of up to ITEMS_PER_TRANSACTION items per transaction (each group's new events, their
 * deliveries, the items' outcomes and the job's counters together, under the lease: every item of a group
 * is written with it or not at all). A group in which anything item-specific goes wrong (an item's targets
 * changed, an item no longer pending, any error but a lost lease) is rolled back and its items are done
 * one per transaction instead. Then completes the job, or releases it until the next chunk is due
 * (delay_ms later; at once after a graceful stop).
 */
export async function runChunk(
  rc: RunnerContext,
  job: RetriggerJobRow,
  control: ChunkControl,
): Promise<ChunkResult> {
  try {
    return await runChunkUnguarded(rc, job, control);
  } catch (err) {
    if (control.killed()) return "abandoned";
    return recordChunkError(rc, job, err);
  }
}

interface ChunkState {
  targets: string[];
  readonly facts: (item: PendingItem, targets: readonly string[]) => ItemFacts;
}

async function runChunkUnguarded(
  rc: RunnerContext,
  job: RetriggerJobRow,
  control: ChunkControl,
): Promise<ChunkResult> {
  const deadline = Date.now() + job.chunk_budget_ms;
  await refreshStatistics(rc.db);
  const items = await pendingItems(rc.db, job.job_id, job.batch_size);
  const targets = await targetsOf(rc.db, job);
  const delivered = await deliveredFor(rc.db, job, targets, items);
  const done = await reemittedByJob(
    rc.db,
    job.job_id,
    items.map((i) => i.source_event_id),
  );
  const state: ChunkState = {
    targets,
    facts: (item, t) => ({
      resolution: { kind: "found" as const, event_id: item.source_event_id, aggregate_id: item.aggregate_id },
      targets: t,
      skipDeliveredAfter: job.skip_delivered_after,
      deliveredSince: delivered.get(item.ordinal) ?? NONE,
      doneByJobAs: done.get(item.source_event_id) ?? null,
    }),
  };
  const groupSize = Math.max(1, Math.min(ITEMS_PER_TRANSACTION, job.batch_size));
  let processed = 0;
  let cut = false;
  for (let at = 0; at < items.length; at += groupSize) {
    if (control.killed()) return "abandoned";
    // Every chunk does at least one group (progress), unless the runner is stopping.
    if (control.stopping() || (processed > 0 && Date.now() >= deadline)) {
      cut = true;
      break;
    }
    const group = items.slice(at, at + groupSize);
    for (const item of group) {
      await control.beforeItem?.(job.job_id, item.ordinal);
      if (control.killed()) return "abandoned";
    }
    let written: { queuedFor: string[]; paused: string[] } | null = null;
    if (group.length > 1) {
      try {
        const decisions = group.map((item) => classifyItem(state.facts(item, state.targets)));
        written = await processGroup(rc, job, group, decisions);
      } catch (err) {
        if (err instanceof LeaseLost) return "lease_lost";
        if (control.killed()) return "abandoned";
        if (!(err instanceof TargetsChanged || err instanceof AlreadyProcessed)) {
          rc.log.warn(
            { err, job_id: job.job_id, first_ordinal: group[0]!.ordinal },
            "re-trigger group failed; doing its items one per transaction",
          );
        }
      }
    }
    if (written) {
      if (written.queuedFor.length > 0) rc.hooks.queued(written.queuedFor);
      for (const id of written.paused) rc.hooks.subscriptionChanged(id, "paused");
    } else {
      // A single item, or a group rolled back: one item per transaction, exactly as before groups.
      for (const item of group) {
        if (control.killed()) return "abandoned";
        if ((await processAlone(rc, job, item, state)) === "lease_lost") return "lease_lost";
      }
    }
    processed += group.length;
  }
  if (control.killed()) return "abandoned";
  const chunkDone = processed > 0;
  if (!cut) {
    const completed = await rc.db.transaction(async (tx) => {
      const j = await completeJob(tx, { jobId: job.job_id, owner: rc.owner, chunkDone });
      if (j) {
        await insertAudit(tx, [
          {
            actor: SYSTEM,
            action: "retrigger.completed",
            tenant_id: j.tenant_id,
            job_id: j.job_id,
            reason: `finished by dispatcher ${rc.owner}`,
            before: { status: "running" },
            after: {
              status: "completed",
              total: j.total,
              sent: j.sent,
              skipped: j.skipped,
              failed: j.failed,
            },
          },
        ]);
      }
      return j;
    });
    if (completed) return "completed";
  }
  const released = await releaseJob(rc.db, {
    jobId: job.job_id,
    owner: rc.owner,
    nextInMs: control.stopping() ? 0 : job.delay_ms,
    chunkDone,
    resetErrors: true,
  });
  return released ? "released" : "lease_lost";
}

/**
 * One item in its own transaction (a group's fallback). The targets can change between the chunk's
 * look-up and the item's transaction (a subscription deleted): look again, at most twice.
 */
async function processAlone(
  rc: RunnerContext,
  job: RetriggerJobRow,
  item: PendingItem,
  state: ChunkState,
): Promise<"done" | "lease_lost"> {
  let decision = classifyItem(state.facts(item, state.targets));
  for (let attempt = 0; ; attempt++) {
    try {
      await processItem(rc, job, item, decision);
      return "done";
    } catch (err) {
      if (err instanceof LeaseLost) return "lease_lost";
      if (err instanceof AlreadyProcessed) return "done";
      if (err instanceof TargetsChanged && attempt < 2) {
        state.targets = await targetsOf(rc.db, job);
        decision = classifyItem(state.facts(item, state.targets));
        continue;
      }
      throw err;
    }
  }
}

function targetsOf(q: Queryable, job: RetriggerJobRow): Promise<string[]> {
  return matchingSubscriptions(q, job.tenant_id, job.event_type, job.subscription_id);
}

function deliveredFor(
  q: Queryable,
  job: RetriggerJobRow,
  targets: readonly string[],
  items: readonly PendingItem[],
): Promise<Map<number, Map<string, Date>>> {
  if (job.skip_delivered_after === null || targets.length === 0 || items.length === 0) {
    return Promise.resolve(new Map());
  }
  return deliveredSince(q, {
    eventType: job.event_type,
    since: job.skip_delivered_after,
    subscriptionIds: targets,
    items: items.map((i) => ({
      key: i.ordinal,
      source_event_id: i.source_event_id,
      aggregate_id: i.aggregate_id,
    })),
  });
}

function newEventOf(job: RetriggerJobRow, item: PendingItem): NewEvent {
  return {
    tenant_id: item.tenant_id,
    event_type: item.event_type,
    aggregate_id: item.aggregate_id,
    occurred_at: item.occurred_at,
    payload: item.payload,
    idempotency_key: null,
    source_txn_id: null,
    retrigger_of: item.source_event_id,
    job_id: job.job_id,
  };
}

function detailOf(d: Decision, newEventId: number | null, deliveries: number | null): string | null {
  return d.kind === "trigger"
    ? `re-emitted as event ${newEventId} to ${deliveries} subscription${deliveries === 1 ? "" : "s"}` +
        (d.detail ? `; ${d.detail}` : "")
    : d.detail;
}

function counts(outcomes: readonly string[]): { sent: number; skipped: number; failed: number } {
  return {
    sent: outcomes.filter((o) => o === "sent").length,
    skipped: outcomes.filter((o) => o === "skipped").length,
    failed: outcomes.filter((o) => o === "failed").length,
  };
}

/** One item, one transaction: fence the lease, re-emit (if it goes), write the outcome. */
async function processItem(
  rc: RunnerContext,
  job: RetriggerJobRow,
  item: PendingItem,
  d: Decision,
): Promise<void> {
  const outcome = outcomeOf(d);
  const result = await rc.db.transaction(async (tx) => {
    const fenced = await fenceAndCount(tx, {
      jobId: job.job_id,
      owner: rc.owner,
      leaseMs: rc.leaseMs,
      ...counts([outcome]),
    });
    if (!fenced) throw new LeaseLost();
    let newEventId: number | null = null;
    let deliveries: number | null = null;
    let queuedFor: string[] = [];
    let paused: string[] = [];
    if (d.kind === "trigger") {
      const r = await acceptWith(tx, [newEventOf(job, item)], {
        onlySubscriptionIds: d.subscriptions,
      });
      const a = r.accepted[0]!;
      if (a.deliveries === 0) throw new TargetsChanged();
      newEventId = a.event_id;
      deliveries = a.deliveries;
      queuedFor = r.queuedFor;
      paused = r.paused;
    }
    const recorded = await recordItem(tx, {
      jobId: job.job_id,
      ordinal: item.ordinal,
      outcome,
      reason: d.kind === "trigger" ? null : d.reason,
      detail: detailOf(d, newEventId, deliveries),
      newEventId,
      deliveries,
    });
    if (!recorded) throw new AlreadyProcessed();
    return { queuedFor, paused };
  });
  if (result.queuedFor.length > 0) rc.hooks.queued(result.queuedFor);
  for (const s of result.paused) rc.hooks.subscriptionChanged(s, "paused");
}

/**
 * Several items, one transaction: fence the lease once (with the group's summed counts), re-emit the
 * items that go (one accept per run of consecutive items with the same target subscriptions, so every
 * subscription gets them in item order), write every item's outcome. Throws TargetsChanged when an item
 * would get no delivery and AlreadyProcessed when an item was no longer pending (the transaction rolls
 * back and the caller does the group's items one by one), LeaseLost when the lease is gone. Returns what
 * the hooks are to be told (the caller tells them once for the group).
 */
async function processGroup(
  rc: RunnerContext,
  job: RetriggerJobRow,
  group: readonly PendingItem[],
  decisions: readonly Decision[],
): Promise<{ queuedFor: string[]; paused: string[] }> {
  const outcomes = decisions.map(outcomeOf);
  return rc.db.transaction(async (tx) => {
    const fenced = await fenceAndCount(tx, {
      jobId: job.job_id,
      owner: rc.owner,
      leaseMs: rc.leaseMs,
      ...counts(outcomes),
    });
    if (!fenced) throw new LeaseLost();
    const newEventIds: Array<number | null> = group.map(() => null);
    const deliveries: Array<number | null> = group.map(() => null);
    const queuedFor = new Set<string>();
    const paused: string[] = [];
    // Runs of consecutive triggered items with the same target set (skipped and failed items between
    // them do not break a run).
    const runs: Array<{ subscriptions: string[]; members: number[] }> = [];
    decisions.forEach((d, i) => {
      if (d.kind !== "trigger") return;
      const last = runs[runs.length - 1];
      if (last && sameSet(last.subscriptions, d.subscriptions)) last.members.push(i);
      else runs.push({ subscriptions: d.subscriptions, members: [i] });
    });
    for (const run of runs) {
      const r = await acceptWith(
        tx,
        run.members.map((i) => newEventOf(job, group[i]!)),
        { onlySubscriptionIds: run.subscriptions },
      );
      run.members.forEach((i, k) => {
        const a = r.accepted[k]!;
        if (a.deliveries === 0) throw new TargetsChanged();
        newEventIds[i] = a.event_id;
        deliveries[i] = a.deliveries;
      });
      for (const s of r.queuedFor) queuedFor.add(s);
      paused.push(...r.paused);
    }
    const recorded = await recordItems(
      tx,
      job.job_id,
      group.map((item, i) => {
        const d = decisions[i]!;
        return {
          ordinal: item.ordinal,
          outcome: outcomes[i]!,
          reason: d.kind === "trigger" ? null : d.reason,
          detail: detailOf(d, newEventIds[i] ?? null, deliveries[i] ?? null),
          newEventId: newEventIds[i] ?? null,
          deliveries: deliveries[i] ?? null,
        };
      }),
    );
    if (recorded !== group.length) throw new AlreadyProcessed();
    return { queuedFor: [...queuedFor], paused };
  });
}

/** Two sorted lists of subscription IDs hold the same IDs. */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** A chunk that failed: counted; retried after a back-off, or at the limit the job fails (audited). */
async function recordChunkError(rc: RunnerContext, job: RetriggerJobRow, err: unknown): Promise<ChunkResult> {
  const message = err instanceof Error ? err.message : String(err);
  rc.log.error({ err, job_id: job.job_id }, "re-trigger chunk failed");
  try {
    const after = await rc.db.transaction(async (tx) => {
      const j = await recordJobError(tx, {
        jobId: job.job_id,
        owner: rc.owner,
        message: message.slice(0, 1000),
        retryInMs: (rc.retryDelayMs ?? chunkRetryDelayMs)(job.error_count + 1),
        maxErrors: MAX_CHUNK_ERRORS,
      });
      if (j?.status === "failed") {
        await insertAudit(tx, [
          {
            actor: SYSTEM,
            action: "retrigger.failed",
            tenant_id: j.tenant_id,
            job_id: j.job_id,
            reason: `${j.error_count} chunks in a row failed; last error: ${j.last_error ?? ""}`,
            before: { status: "running" },
            after: { status: "failed", pending: j.total - j.sent - j.skipped - j.failed },
          },
        ]);
      }
      return j;
    });
    return after?.status === "failed" ? "failed" : "error";
  } catch (recordErr) {
    // The store is unreachable: the lease expires and the job is taken up again.
    rc.log.error({ err: recordErr, job_id: job.job_id }, "could not record a re-trigger chunk error");
    return "error";
  }
}
