import type { ErrorKind } from "../domain/error-kind.ts";
import { type ErrorLogRow, type LastOutcome, lastOutcomes, listErrorRows } from "../store/error-log.ts";
import { type Actor, type ServiceContext, tenantScope } from "./context.ts";
import { toPage } from "./page.ts";

export interface ErrorLogQuery {
  subscription_id?: string | undefined;
  error_kind?: ErrorKind | undefined;
  status?: "failed" | "dlq" | undefined;
  /** Rows older than this delivery_id. */
  before?: number | undefined;
  limit: number;
}

/** The error log: failed and DLQ delivery rows the actor may see, newest first, cursor-paged. */
export async function listErrorLog(
  ctx: ServiceContext,
  actor: Actor,
  f: ErrorLogQuery,
): Promise<{ items: ErrorLogRow[]; next_cursor: number | null }> {
  const rows = await listErrorRows(ctx.db, {
    tenantId: tenantScope(actor),
    subscriptionId: f.subscription_id,
    errorKind: f.error_kind,
    status: f.status,
    before: f.before,
    limit: f.limit + 1,
  });
  return toPage(rows, f.limit, (r) => r.delivery_id);
}

/** How many of a subscription's latest rows are searched for its last delivered event. */
export const LAST_DELIVERED_LOOKBACK = 1000;

/** Each subscription's last error and last delivered event (ids the caller may see). */
export async function lastOutcomesOf(
  ctx: ServiceContext,
  ids: readonly string[],
): Promise<Map<string, LastOutcome>> {
  const rows = await lastOutcomes(ctx.db, ids, LAST_DELIVERED_LOOKBACK);
  return new Map(rows.map((r) => [r.subscription_id, r]));
}

export type { ErrorLogRow, LastOutcome };
