import type { Queryable } from "./db.ts";
import type { AuditRow, NewAudit } from "./types.ts";

export async function insertAudit(q: Queryable, rows: readonly NewAudit[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO audit_log (actor, action, tenant_id, subscription_id, job_id, reason, before, after)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::jsonb[], $8::jsonb[])`,
    auditColumns(rows),
  );
}

/** Audit rows as the eight column arrays of `unnest` (actor … after), for inserts in one statement. */
export function auditColumns(rows: readonly NewAudit[]): unknown[][] {
  return [
    rows.map((r) => r.actor),
    rows.map((r) => r.action),
    rows.map((r) => r.tenant_id ?? null),
    rows.map((r) => r.subscription_id ?? null),
    rows.map((r) => r.job_id ?? null),
    rows.map((r) => r.reason ?? null),
    rows.map((r) => (r.before === undefined ? null : JSON.stringify(r.before))),
    rows.map((r) => (r.after === undefined ? null : JSON.stringify(r.after))),
  ];
}

export interface AuditFilter {
  tenantId: string | null;
  subscriptionId?: string | undefined;
  jobId?: number | undefined;
  before?: number | undefined;
  limit: number;
}

/** Newest first, paged by audit_id. */
export async function listAudit(q: Queryable, f: AuditFilter): Promise<AuditRow[]> {
  const res = await q.query<AuditRow>(
    `SELECT * FROM audit_log
     WHERE ($1::text IS NULL OR tenant_id = $1)
       AND ($2::text IS NULL OR subscription_id = $2)
       AND ($3::bigint IS NULL OR job_id = $3)
       AND ($4::bigint IS NULL OR audit_id < $4)
     ORDER BY audit_id DESC
     LIMIT $5`,
    [f.tenantId, f.subscriptionId ?? null, f.jobId ?? null, f.before ?? null, f.limit],
  );
  return res.rows;
}

/** What an automatic pause's audit reason says, before "(count of ceiling)". */
export const CEILING_PAUSE_TEXT = {
  pending_ceiling: "pending deliveries reached the pending ceiling",
  dlq_ceiling: "DLQ deliveries reached the DLQ ceiling",
} as const;

/**
 * SQL: the SET clauses that pause subscription row `s` at a ceiling where the joined row `u` says `pauses`
 * (the accept's and the record's counter updates; their audit rows match ceilingPauseAudit).
 */
export function ceilingPauseSet(reason: keyof typeof CEILING_PAUSE_TEXT): string {
  return `status = CASE WHEN u.pauses THEN 'paused' ELSE s.status END,
        pause_reason = CASE WHEN u.pauses THEN '${reason}' ELSE s.pause_reason END,
        paused_at = CASE WHEN u.pauses THEN now() ELSE s.paused_at END,
        updated_at = CASE WHEN u.pauses THEN now() ELSE s.updated_at END`;
}

/** The audit row of an automatic pause by a ceiling (actor `system`). */
export function ceilingPauseAudit(a: {
  tenant_id: string;
  subscription_id: string;
  reason: "pending_ceiling" | "dlq_ceiling";
  count: number;
  ceiling: number;
  cause?: string;
}): NewAudit {
  const what = CEILING_PAUSE_TEXT[a.reason];
  const countField = a.reason === "pending_ceiling" ? "pending_count" : "dlq_count";
  return {
    actor: "system",
    action: "subscription.paused",
    tenant_id: a.tenant_id,
    subscription_id: a.subscription_id,
    reason: `${what} (${a.count} of ${a.ceiling})${a.cause ? ` ${a.cause}` : ""}`,
    before: { status: "active", pause_reason: null },
    after: { status: "paused", pause_reason: a.reason, [countField]: a.count },
  };
}
