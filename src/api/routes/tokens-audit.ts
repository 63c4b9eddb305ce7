import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { listAuditRows } from "../../service/audit.ts";
import type { ServiceContext } from "../../service/context.ts";
import { createTenantToken, listTokens, revokeToken } from "../../service/tokens.ts";
import { AuditEntry, errorResponses, Id } from "../schemas.ts";
import { viewAudit } from "../views.ts";

/** A token as listed and revoked: never its value or hash. */
const TokenInfo = Type.Object({
  token_id: Type.String(),
  tenant_id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
});

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

    app.get(
      "/tokens",
      {
        schema: {
          summary: "Admin only: tokens, newest first (never their value); revoked ones with include_revoked",
          querystring: Type.Object(
            {
              tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              include_revoked: Type.Optional(Type.Boolean({ default: false })),
              cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              items: Type.Array(TokenInfo),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) =>
        listTokens(ctx, req.actor, {
          tenant_id: req.query.tenant_id,
          include_revoked: req.query.include_revoked,
          after: req.query.cursor,
          limit: req.query.limit ?? 100,
        }),
    );

    app.delete(
      "/tokens/:id",
      {
        schema: {
          summary:
            "Admin only: revoke a token (reason in ?reason=); every process refuses it from then on (audited)",
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
          querystring: Type.Object(
            { reason: Type.Optional(Type.String({ maxLength: 1000 })) },
            { additionalProperties: false },
          ),
          response: { 200: TokenInfo, ...errorResponses },
        },
      },
      async (req) => revokeToken(ctx, req.actor, req.params.id, req.query.reason),
    );
  };
}
