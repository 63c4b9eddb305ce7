import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { listAuditRows } from "../../service/audit.ts";
import type { ServiceContext } from "../../service/context.ts";
import { createTenantToken } from "../../service/tokens.ts";
import { AuditEntry, errorResponses, Id } from "../schemas.ts";
import { viewAudit } from "../views.ts";

export function tokenRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/tokens",
      {
        schema: {
          summary: "Admin only: make a tenant-scoped token (the value is shown once)",
          body: Type.Object(
            {
              tenant_id: Type.String({ minLength: 1, maxLength: 200 }),
              name: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
          response: {
            201: Type.Object({
              token_id: Type.String(),
              tenant_id: Type.String(),
              name: Type.Union([Type.String(), Type.Null()]),
              token: Type.String(),
              created_at: Type.String(),
            }),
            ...errorResponses,
          },
        },
      },
      async (req, reply) => reply.status(201).send(await createTenantToken(ctx, req.actor, req.body)),
    );
  };
}

export function auditRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/audit",
      {
        schema: {
          summary: "Audit rows, newest first",
          querystring: Type.Object(
            {
              subscription_id: Type.Optional(Type.String({ maxLength: 100 })),
              job_id: Type.Optional(Id()),
              cursor: Type.Optional(Id()),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              items: Type.Array(AuditEntry),
              next_cursor: Type.Union([Type.Integer(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) => {
        const page = await listAuditRows(ctx, req.actor, {
          subscription_id: req.query.subscription_id,
          job_id: req.query.job_id,
          before: req.query.cursor,
          limit: req.query.limit ?? 100,
        });
        return { items: page.items.map(viewAudit), next_cursor: page.next_cursor };
      },
    );
  };
}
