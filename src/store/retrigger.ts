import type { Queryable } from "./db.ts";

export type JobStatus = "pending" | "running" | "completed" | "cancelled" | "failed";
export type SelectionKind = "window" | "aggregate_ids" | "event_ids";
export type StoredOutcome = "pending" | "sent" | "skipped" | "failed";

export interface RetriggerJobRow {
  job_id: number;
  tenant_id: string;
  event_type: string;
  selection_kind: SelectionKind;
  selection: Record<string, unknown>;
  occurred_after: Date | null;
  occurred_before: Date | null;
  subscription_id: string | null;
  batch_size: number;
  delay_ms: number;
  chunk_budget_ms: number;
  skip_delivered_after: Date | null;
  status: JobStatus;
  total: number;
  sent: number;
  skipped: number;
  failed: number;
  chunks_done: number;
  next_run_at: Date;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  error_count: number;
  last_error: string | null;
  created_by: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
  /** Computed with the database's clock: its chunk owner vanished (lease expired) or nobody took it up. */
  interrupted: boolean;
}

/**
 * A runnable job nobody has taken up for this long after its next chunk fell due counts as interrupted
 * (longer than a few chunks of other jobs a busy runner may run first).
 */
const UNCLAIMED_INTERRUPTED = "interval '2 minutes'";

const JOB_COLUMNS = `j.*,
  (j.status IN ('pending', 'running') AND (
     (j.lease_owner IS NOT NULL AND j.lease_expires_at < now())
     OR (j.lease_owner IS NULL AND j.next_run_at < now() - ${UNCLAIMED_INTERRUPTED}))) AS interrupted`;

/**
 * Runs `statement`, an INSERT or UPDATE of retrigger_jobs ending in `RETURNING *`, and returns the job it
 * wrote with JOB_COLUMNS (null when it wrote none).
 */
async function writeJob(
  q: Queryable,
  statement: string,
  params: readonly unknown[],
): Promise<RetriggerJobRow | null> {
  const res = await q.query<RetriggerJobRow>(
    `WITH upd AS (
       ${statement}
     )
     SELECT ${JOB_COLUMNS} FROM upd j`,
    params,
  );
  return res.rows[0] ?? null;
}

/** The columns a job is inserted with (the rest take their defaults). */
export interface NewJob
  extends Pick<
    RetriggerJobRow,
    | "tenant_id"
    | "event_type"
    | "selection_kind"
    | "selection"
    | "occurred_after"
    | "occurred_before"
    | "subscription_id"
    | "batch_size"
    | "delay_ms"
    | "chunk_budget_ms"
    | "skip_delivered_after"
    | "total"
    | "created_by"
  > {
  /** Items that failed already when the job was made (their IDs did not resolve). */
  failed: number;
}

export async function insertJob(q: Queryable, j: NewJob): Promise<RetriggerJobRow> {
  const row = await writeJob(
    q,
    `INSERT INTO retrigger_jobs (tenant_id, event_type, selection_kind, selection, occurred_after, occurred_before,
       subscription_id, batch_size, delay_ms, chunk_budget_ms, skip_delivered_after, total, failed, created_by)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     RETURNING *`,
    [
      j.tenant_id,
      j.event_type,
      j.selection_kind,
      JSON.stringify(j.selection),
      j.occurred_after,
      j.occurred_before,
      j.subscription_id,
      j.batch_size,
      j.delay_ms,
      j.chunk_budget_ms,
      j.skip_delivered_after,
      j.total,
      j.failed,
      j.created_by,
    ],
  );
  return row!;
}

export interface NewItem {
  ordinal: number;
  requested_id: string;
  source_event_id: number | null;
  /** pending, or failed when the ID did not resolve. */
  outcome: "pending" | "failed";
  reason: string | null;
  detail: string | null;
}

/** Rows per INSERT: keeps each statement's parameters a few MB at most. */
const ITEM_INSERT_BATCH = 10_000;

export async function insertItems(q: Queryable, jobId: number, items: readonly NewItem[]): Promise<void> {
  for (let at = 0; at < items.length; at += ITEM_INSERT_BATCH) {
    const part = items.slice(at, at + ITEM_INSERT_BATCH);
    await q.query(
      `INSERT INTO retrigger_items (job_id, ordinal, requested_id, source_event_id, outcome, reason, detail, processed_at)
       SELECT $1, o, r, s, out, rs, d, CASE WHEN out = 'pending' THEN NULL ELSE now() END
       FROM unnest($2::int[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[]) AS t(o, r, s, out, rs, d)`,
      [
        jobId,
        part.map((i) => i.ordinal),
        part.map((i) => i.requested_id),
        part.map((i) => i.source_event_id),
        part.map((i) => i.outcome),
        part.map((i) => i.reason),
        part.map((i) => i.detail),
      ],
    );
  }
}

/** A job the tenant may see (`tenantId` null: any). */
export async function findJob(
  q: Queryable,
  jobId: number,
  tenantId: string | null,
  opts: { forUpdate?: boolean } = {},
): Promise<RetriggerJobRow | null> {
  const res = await q.query<RetriggerJobRow>(
    `SELECT ${JOB_COLUMNS} FROM retrigger_jobs j
     WHERE j.job_id = $1 AND ($2::text IS NULL OR j.tenant_id = $2)
     ${opts.forUpdate ? "FOR UPDATE" : ""}`,
    [jobId, tenantId],
  );
  return res.rows[0] ?? null;
}

/** Newest first, paged by job_id. */
export async function listJobs(
  q: Queryable,
  f: { tenantId: string | null; status?: JobStatus | undefined; before?: number | undefined; limit: number },
): Promise<RetriggerJobRow[]> {
  const res = await q.query<RetriggerJobRow>(
    `SELECT ${JOB_COLUMNS} FROM retrigger_jobs j
     WHERE ($1::text IS NULL OR j.tenant_id = $1)
       AND ($2::text IS NULL OR j.status = $2)
       AND ($3::bigint IS NULL OR j.job_id < $3)
     ORDER BY j.job_id DESC
     LIMIT $4`,
    [f.tenantId, f.status ?? null, f.before ?? null, f.limit],
  );
  return res.rows;
}

export interface ItemRow {
  job_id: number;
  ordinal: number;
  requested_id: string;
  source_event_id: number | null;
  outcome: StoredOutcome;
  reason: string | null;
  detail: string | null;
  new_event_id: number | null;
  deliveries: number | null;
  processed_at: Date | null;
}

/** Items in job order, paged by ordinal. */
export async function listItems(
  q: Queryable,
  jobId: number,
  f: { outcome?: StoredOutcome | undefined; after?: number | undefined; limit: number },
): Promise<ItemRow[]> {
  const res = await q.query<ItemRow>(
    `SELECT * FROM retrigger_items
     WHERE job_id = $1 AND ($2::text IS NULL OR outcome = $2) AND ($3::int IS NULL OR ordinal > $3)
     ORDER BY ordinal
     LIMIT $4`,
    [jobId, f.outcome ?? null, f.after ?? null, f.limit],
  );
  return res.rows;
}

// ---- Resolving a selection -------------------------------------------------------------------------

export interface AggregateResolution {
  requested_id: string;
  /** The latest original (not itself re-emitted) event of the type for the aggregate, in the tenant. */
  event_id: number | null;
  /** No such event in the tenant, but another tenant has one. */
  other_tenant: boolean;
}

/**
 * For each aggregate ID, in input order: its latest event of the type in the tenant, and whether another
 * tenant has one. One index probe per ID on `events (aggregate_id, event_type)`: the tenant is filtered
 * in the aggregates, so no plan can trade the probe for a scan of the tenant's events (which PostgreSQL
 * picks when it has no statistics, e.g. on a freshly filled table).
 */
export async function resolveAggregateIds(
  q: Queryable,
  tenantId: string,
  eventType: string,
  ids: readonly string[],
): Promise<AggregateResolution[]> {
  const res = await q.query<AggregateResolution & { ord: number }>(
    `SELECT r.ord::int AS ord, r.requested_id, m.event_id, COALESCE(m.other_tenant, false) AS other_tenant
     FROM unnest($1::text[]) WITH ORDINALITY AS r(requested_id, ord)
     LEFT JOIN LATERAL (
       SELECT max(e.event_id) FILTER (WHERE e.tenant_id = $2 AND e.retrigger_of IS NULL) AS event_id,
              bool_or(e.tenant_id <> $2) AS other_tenant
       FROM events e
       WHERE e.aggregate_id = r.requested_id AND e.event_type = $3
     ) m ON true
     ORDER BY r.ord`,
    [ids, tenantId, eventType],
  );
  return res.rows.map((r) => ({
    requested_id: r.requested_id,
    event_id: r.event_id,
    other_tenant: r.event_id === null && r.other_tenant,
  }));
}

export interface EventIdResolution {
  requested: number;
  event_id: number | null;
  tenant_id: string | null;
  event_type: string | null;
  aggregate_id: string | null;
}

/** For each event ID, in input order: the event, of whatever tenant (the caller applies the guard). */
export async function resolveEventIds(q: Queryable, ids: readonly number[]): Promise<EventIdResolution[]> {
  const res = await q.query<EventIdResolution & { ord: number }>(
    `SELECT r.ord::int AS ord, r.requested, e.event_id, e.tenant_id, e.event_type, e.aggregate_id
     FROM unnest($1::bigint[]) WITH ORDINALITY AS r(requested, ord)
     LEFT JOIN events e ON e.event_id = r.requested
     ORDER BY r.ord`,
    [ids],
  );
  return res.rows;
}

/**
 * Original events (not re-emitted copies) of a tenant and type with occurred_after <= occurred_at <
 * occurred_before, oldest first; at most `limit`.
 */
export async function selectWindow(
  q: Queryable,
  f: { tenantId: string; eventType: string; after: Date | null; before: Date | null; limit: number },
): Promise<Array<{ event_id: number; aggregate_id: string | null }>> {
  const res = await q.query<{ event_id: number; aggregate_id: string | null }>(
    `SELECT event_id, aggregate_id FROM events
     WHERE tenant_id = $1 AND event_type = $2 AND retrigger_of IS NULL
       AND ($3::timestamptz IS NULL OR occurred_at >= $3)
       AND ($4::timestamptz IS NULL OR occurred_at < $4)
     ORDER BY occurred_at, event_id
     LIMIT $5`,
    [f.tenantId, f.eventType, f.after, f.before, f.limit],
  );
  return res.rows;
}

/** Live subscriptions of the tenant that receive the type (only `subscriptionId` when given). */
export async function matchingSubscriptions(
  q: Queryable,
  tenantId: string,
  eventType: string,
  subscriptionId: string | null,
): Promise<string[]> {
  const res = await q.query<{ subscription_id: string }>(
    `SELECT subscription_id FROM subscriptions
     WHERE tenant_id = $1 AND deleted_at IS NULL
       AND ($2 = ANY(event_types) OR '*' = ANY(event_types))
       AND ($3::text IS NULL OR subscription_id = $3)
     ORDER BY subscription_id`,
    [tenantId, eventType, subscriptionId],
  );
  return res.rows.map((r) => r.subscription_id);
}

export interface SourceKey {
  /** The caller's key for the item (e.g. its ordinal). */
  key: number;
  source_event_id: number;
  aggregate_id: string | null;
}

interface DeliveredRow {
  key: number;
  subscription_id: string;
  at: Date;
}

/**
 * The latest time per key and subscription among deliveries found for each key: `keys` is a FROM item
 * with a row `x(key, …)` per key, `deliveries` the FROM and WHERE of one key's deliveries `d` (lateral,
 * on x). OFFSET 0 keeps the planner from flattening the lateral subquery into a join it may cost wrongly
 * without statistics.
 */
async function latestDeliveries(
  q: Queryable,
  keys: string,
  deliveries: string,
  params: readonly unknown[],
): Promise<DeliveredRow[]> {
  const res = await q.query<DeliveredRow>(
    `SELECT x.key, m.subscription_id, max(m.completed_at) AS at
     FROM ${keys}
     CROSS JOIN LATERAL (
       SELECT d.subscription_id, d.completed_at
       ${deliveries}
       OFFSET 0
     ) m
     GROUP BY x.key, m.subscription_id`,
    params,
  );
  return res.rows;
}

/**
 * For each item: which of `subscriptionIds` (one tenant's) had an event of the type for the item's aggregate delivered
 * at or after `since` (and the latest such time). An item without an aggregate looks at its source event
 * and the events re-emitted from it.
 */
export async function deliveredSince(
  q: Queryable,
  f: {
    eventType: string;
    since: Date;
    subscriptionIds: readonly string[];
    items: readonly SourceKey[];
  },
): Promise<Map<number, Map<string, Date>>> {
  const out = new Map<number, Map<string, Date>>();
  if (f.items.length === 0 || f.subscriptionIds.length === 0) return out;
  const withAggregate = f.items.filter((i) => i.aggregate_id !== null);
  const without = f.items.filter((i) => i.aggregate_id === null);
  const rows: DeliveredRow[] = [];
  if (withAggregate.length > 0) {
    // Driven by the list: one probe per aggregate on events (aggregate_id, event_type), then deliveries
    // by event (OFFSET 0 in latestDeliveries keeps it so). No tenant condition: the subscriptions
    // (filtered below) are the tenant's, and a condition on the tenant would offer the planner a scan of
    // all the tenant's events instead.
    const found = await latestDeliveries(
      q,
      "unnest($1::int[], $2::text[]) AS x(key, aggregate_id)",
      `FROM events e JOIN deliveries d ON d.event_id = e.event_id
       WHERE e.aggregate_id = x.aggregate_id AND e.event_type = $3
         AND d.status = 'delivered' AND d.completed_at >= $4`,
      [withAggregate.map((i) => i.key), withAggregate.map((i) => i.aggregate_id), f.eventType, f.since],
    );
    rows.push(...found);
  }
  if (without.length > 0) {
    const found = await latestDeliveries(
      q,
      "unnest($1::int[], $2::bigint[]) AS x(key, source)",
      `FROM (SELECT x.source AS event_id UNION ALL SELECT e.event_id FROM events e WHERE e.retrigger_of = x.source) ev
       JOIN deliveries d ON d.event_id = ev.event_id
       WHERE d.status = 'delivered' AND d.completed_at >= $3`,
      [without.map((i) => i.key), without.map((i) => i.source_event_id), f.since],
    );
    rows.push(...found);
  }
  const wanted = new Set(f.subscriptionIds);
  for (const r of rows) {
    if (!wanted.has(r.subscription_id)) continue;
    const m = out.get(r.key) ?? new Map<string, Date>();
    m.set(r.subscription_id, r.at);
    out.set(r.key, m);
  }
  return out;
}

/** Events this job already re-emitted, by source event. */
export async function reemittedByJob(
  q: Queryable,
  jobId: number,
  sourceEventIds: readonly number[],
): Promise<Map<number, number>> {
  if (sourceEventIds.length === 0) return new Map();
  const res = await q.query<{ retrigger_of: number; event_id: number }>(
    `SELECT retrigger_of, min(event_id) AS event_id FROM events
     WHERE retrigger_of = ANY($1::bigint[]) AND job_id = $2
     GROUP BY retrigger_of`,
    [sourceEventIds, jobId],
  );
  return new Map(res.rows.map((r) => [r.retrigger_of, r.event_id]));
}

// ---- Running a job -----------------------------------------------------------------------------------

export interface ClaimedJob {
  job: RetriggerJobRow;
  prev_status: JobStatus;
  /** The owner whose lease had expired, when this claim took the job over from it. */
  recovered_from: string | null;
}

/**
 * Takes the lease on one runnable job whose next chunk is due and that no live owner holds (free, or its
 * lease expired), oldest due first. `FOR UPDATE SKIP LOCKED` keeps two dispatchers from taking one job.
 */
export async function claimJob(q: Queryable, owner: string, leaseMs: number): Promise<ClaimedJob | null> {
  const res = await q.query<RetriggerJobRow & { prev_status: JobStatus; recovered_from: string | null }>(
    `WITH c AS (
       SELECT job_id, status AS prev_status, lease_owner AS prev_owner FROM retrigger_jobs
       WHERE status IN ('pending', 'running') AND next_run_at <= now()
         AND (lease_owner IS NULL OR lease_expires_at < now())
       ORDER BY next_run_at, job_id
       LIMIT 1
       FOR UPDATE SKIP LOCKED
     ), upd AS (
       UPDATE retrigger_jobs j
       SET status = 'running', lease_owner = $1,
           lease_expires_at = now() + ($2::double precision * interval '1 millisecond'),
           started_at = COALESCE(j.started_at, now()), updated_at = now()
       FROM c WHERE j.job_id = c.job_id
       RETURNING j.*, c.prev_status, c.prev_owner AS recovered_from
     )
     SELECT ${JOB_COLUMNS} FROM upd j`,
    [owner, leaseMs],
  );
  const row = res.rows[0];
  if (!row) return null;
  const { prev_status, recovered_from, ...job } = row;
  return { job, prev_status, recovered_from };
}

/** When the earliest runnable, unowned job's next chunk falls due (the runner's next wake-up), or null. */
export async function nextJobDueAt(q: Queryable): Promise<Date | null> {
  const res = await q.query<{ at: Date | null }>(
    `SELECT min(CASE WHEN lease_owner IS NULL THEN next_run_at ELSE GREATEST(next_run_at, lease_expires_at) END) AS at
     FROM retrigger_jobs WHERE status IN ('pending', 'running')`,
  );
  return res.rows[0]?.at ?? null;
}

export interface PendingItem {
  ordinal: number;
  requested_id: string;
  source_event_id: number;
  tenant_id: string;
  event_type: string;
  aggregate_id: string | null;
  occurred_at: Date;
  payload: unknown;
}

/** The next pending items of a job in order, with their source events. */
export async function pendingItems(q: Queryable, jobId: number, limit: number): Promise<PendingItem[]> {
  const res = await q.query<PendingItem>(
    `SELECT i.ordinal, i.requested_id, i.source_event_id, e.tenant_id, e.event_type, e.aggregate_id,
            e.occurred_at, e.payload
     FROM retrigger_items i
     JOIN events e ON e.event_id = i.source_event_id
     WHERE i.job_id = $1 AND i.outcome = 'pending'
     ORDER BY i.ordinal
     LIMIT $2`,
    [jobId, limit],
  );
  return res.rows;
}

/**
 * The fence of every item's (or group of items') transaction: locks the job row if `owner` still holds the
 * lease on a running job, renews the lease, and adds the outcomes (summed over a group) to the counters. False when the lease was lost
 * (taken over, released by a resume, or the job cancelled): the caller must roll back.
 */
export async function fenceAndCount(
  tx: Queryable,
  f: { jobId: number; owner: string; leaseMs: number; sent: number; skipped: number; failed: number },
): Promise<boolean> {
  const res = await tx.query(
    `UPDATE retrigger_jobs
     SET lease_expires_at = now() + ($3::double precision * interval '1 millisecond'),
         sent = sent + $4, skipped = skipped + $5, failed = failed + $6, updated_at = now()
     WHERE job_id = $1 AND lease_owner = $2 AND status = 'running'`,
    [f.jobId, f.owner, f.leaseMs, f.sent, f.skipped, f.failed],
  );
  return res.rowCount === 1;
}

/** What processing one job item came to, as written to its row. */
export interface ItemOutcome {
  ordinal: number;
  outcome: "sent" | "skipped" | "failed";
  reason: string | null;
  detail: string | null;
  newEventId: number | null;
  deliveries: number | null;
}

/** Writes an item's outcome if it is still pending; false when it was not. */
export async function recordItem(tx: Queryable, r: ItemOutcome & { jobId: number }): Promise<boolean> {
  return (await recordItems(tx, r.jobId, [r])) === 1;
}

/**
 * Writes several items' outcomes in one statement (a group of items in one transaction), each only if it
 * is still pending; returns how many were written (fewer than given when some were not pending).
 */
export async function recordItems(
  tx: Queryable,
  jobId: number,
  items: ReadonlyArray<ItemOutcome>,
): Promise<number> {
  if (items.length === 0) return 0;
  const res = await tx.query(
    `UPDATE retrigger_items i
     SET outcome = t.outcome, reason = t.reason, detail = t.detail, new_event_id = t.new_event_id,
         deliveries = t.deliveries, processed_at = now()
     FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::int[])
       AS t(ordinal, outcome, reason, detail, new_event_id, deliveries)
     WHERE i.job_id = $1 AND i.ordinal = t.ordinal AND i.outcome = 'pending'`,
    [
      jobId,
      items.map((r) => r.ordinal),
      items.map((r) => r.outcome),
      items.map((r) => r.reason),
      items.map((r) => r.detail),
      items.map((r) => r.newEventId),
      items.map((r) => r.deliveries),
    ],
  );
  return res.rowCount;
}

/**
 * Ends a chunk: releases the lease (if still ours) and sets when the next chunk may start. Returns the
 * job, or null when the lease was no longer ours.
 */
export async function releaseJob(
  q: Queryable,
  f: { jobId: number; owner: string; nextInMs: number; chunkDone: boolean; resetErrors: boolean },
): Promise<RetriggerJobRow | null> {
  return writeJob(
    q,
    `UPDATE retrigger_jobs
     SET lease_owner = NULL, lease_expires_at = NULL,
         next_run_at = now() + ($3::double precision * interval '1 millisecond'),
         chunks_done = chunks_done + CASE WHEN $4::boolean THEN 1 ELSE 0 END,
         error_count = CASE WHEN $5::boolean THEN 0 ELSE error_count END,
         updated_at = now()
     WHERE job_id = $1 AND lease_owner = $2
     RETURNING *`,
    [f.jobId, f.owner, f.nextInMs, f.chunkDone, f.resetErrors],
  );
}

/**
 * Marks a running job completed if `owner` holds it and no item is pending; returns the job, or null.
 */
export async function completeJob(
  tx: Queryable,
  f: { jobId: number; owner: string; chunkDone: boolean },
): Promise<RetriggerJobRow | null> {
  return writeJob(
    tx,
    `UPDATE retrigger_jobs j
     SET status = 'completed', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL,
         chunks_done = chunks_done + CASE WHEN $3::boolean THEN 1 ELSE 0 END, error_count = 0, updated_at = now()
     WHERE j.job_id = $1 AND j.lease_owner = $2 AND j.status = 'running'
       AND NOT EXISTS (SELECT 1 FROM retrigger_items i WHERE i.job_id = $1 AND i.outcome = 'pending')
     RETURNING *`,
    [f.jobId, f.owner, f.chunkDone],
  );
}

/**
 * Records a chunk that failed with an error: releases the lease, counts the error, and either schedules
 * the chunk again after `retryInMs` or, at `maxErrors`, marks the job failed. Null when not ours.
 */
export async function recordJobError(
  tx: Queryable,
  f: { jobId: number; owner: string; message: string; retryInMs: number; maxErrors: number },
): Promise<RetriggerJobRow | null> {
  return writeJob(
    tx,
    `UPDATE retrigger_jobs
     SET error_count = error_count + 1, last_error = $3, lease_owner = NULL, lease_expires_at = NULL,
         next_run_at = now() + ($4::double precision * interval '1 millisecond'),
         status = CASE WHEN error_count + 1 >= $5 THEN 'failed' ELSE status END,
         finished_at = CASE WHEN error_count + 1 >= $5 THEN now() ELSE finished_at END,
         updated_at = now()
     WHERE job_id = $1 AND lease_owner = $2 AND status = 'running'
     RETURNING *`,
    [f.jobId, f.owner, f.message, f.retryInMs, f.maxErrors],
  );
}

/** An operator's change of a job (cancel, resume): status, lease cleared, due now. */
export async function setJobStatus(
  tx: Queryable,
  jobId: number,
  status: JobStatus,
  opts: { finished: boolean },
): Promise<RetriggerJobRow> {
  const row = await writeJob(
    tx,
    `UPDATE retrigger_jobs
     SET status = $2, lease_owner = NULL, lease_expires_at = NULL, next_run_at = now(),
         error_count = 0,
         finished_at = CASE WHEN $3::boolean THEN now() ELSE NULL END, updated_at = now()
     WHERE job_id = $1
     RETURNING *`,
    [jobId, status, opts.finished],
  );
  return row!;
}
