import { listAudit } from "../store/audit.ts";
import type { AuditRow } from "../store/types.ts";
import { type Actor, type ServiceContext, tenantScope } from "./context.ts";
import { toPage } from "./page.ts";

/** Audit rows the actor may see, newest first, cursor-paged by audit_id. */
export async function listAuditRows(
  ctx: ServiceContext,
  actor: Actor,
  f: {
    subscription_id?: string | undefined;
    job_id?: number | undefined;
    before?: number | undefined;
    limit: number;
  },
): Promise<{ items: AuditRow[]; next_cursor: number | null }> {
  const rows = await listAudit(ctx.db, {
    tenantId: tenantScope(actor),
    subscriptionId: f.subscription_id,
    jobId: f.job_id,
    before: f.before,
    limit: f.limit + 1,
  });
  return toPage(rows, f.limit, (r) => r.audit_id);
}
