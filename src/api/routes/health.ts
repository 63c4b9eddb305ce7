import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { ServiceContext } from "../../service/context.ts";

/** Extra readiness checks beyond the database (e.g. the dispatcher loop is running). */
export type Readiness = () => Promise<Record<string, boolean>>;

export function healthRoutes(ctx: ServiceContext, readiness?: Readiness): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/healthz",
      {
        schema: {
          summary: "Liveness: the process answers",
          response: { 200: Type.Object({ status: Type.String() }) },
        },
      },
      async () => ({ status: "ok" }),
    );
    app.get(
      "/readyz",
      {
        schema: {
          summary: "Readiness: the store answers (and the process's own checks pass)",
          response: {
            200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.Boolean()) }),
            503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.Boolean()) }),
          },
        },
      },
      async (_req, reply) => {
        const checks: Record<string, boolean> = {};
        try {
          await ctx.db.query("SELECT 1");
          checks.store = true;
        } catch {
          checks.store = false;
        }
        if (readiness) Object.assign(checks, await readiness());
        const ok = Object.values(checks).every(Boolean);
        return reply.status(ok ? 200 : 503).send({ status: ok ? "ready" : "not_ready", checks });
      },
    );
  };
}
