import type { FastifyInstance } from "fastify";
import { ERROR_KINDS, type ErrorKind, isErrorKind } from "../../domain/error-kind.ts";
import { HeraldError } from "../../errors.ts";
import { listAuditRows } from "../../service/audit.ts";
import { listErrorLog } from "../../service/error-log.ts";
import { positiveInt } from "../forms.ts";
import { ADMIN, isOneOf, PAGE_SIZE, type PanelDeps, query, sendHtml } from "../http.ts";
import { auditPage } from "../pages/audit.ts";
import { errorsPage } from "../pages/errors.ts";

/** The error log and the audit log: read-only, filtered and cursor-paged. */
export function logRoutes(app: FastifyInstance, deps: PanelDeps): void {
  const { ctx, viewOf } = deps;

  app.get("/errors", async (req, reply) => {
    const q = query(req);
    const kind = q.error_kind;
    if (kind !== undefined && !isErrorKind(kind)) {
      throw new HeraldError("invalid_field", `error_kind must be one of ${ERROR_KINDS.join(", ")}`);
    }
    const status = q.status;
    if (status !== undefined && !isOneOf(status, ["failed", "dlq"] as const)) {
      throw new HeraldError("invalid_field", "status must be failed or dlq");
    }
    const filter = {
      subscription_id: q.subscription_id,
      error_kind: kind as ErrorKind | undefined,
      status,
      cursor: positiveInt(q.cursor, "cursor"),
    };
    const r = await listErrorLog(ctx, ADMIN, { ...filter, before: filter.cursor, limit: PAGE_SIZE });
    return sendHtml(
      reply,
      200,
      errorsPage(viewOf(req), { items: r.items, nextCursor: r.next_cursor, filter }),
    );
  });

  app.get("/audit", async (req, reply) => {
    const q = query(req);
    const filter = {
      subscription_id: q.subscription_id,
      job_id: positiveInt(q.job_id, "job_id"),
      cursor: positiveInt(q.cursor, "cursor"),
    };
    const r = await listAuditRows(ctx, ADMIN, { ...filter, before: filter.cursor, limit: PAGE_SIZE });
    return sendHtml(
      reply,
      200,
      auditPage(viewOf(req), { items: r.items, nextCursor: r.next_cursor, filter }),
    );
  });
}
