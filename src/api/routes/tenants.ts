import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { ServiceContext } from "../../service/context.ts";
import { getTenantLimits, setTenantLimits } from "../../service/tenant-limits.ts";
import { errorResponses } from "../schemas.ts";

const TenantParams = Type.Object({ tenant_id: Type.String({ minLength: 1, maxLength: 200 }) });

const TenantLimits = Type.Object({
  tenant_id: Type.String(),
  max_subscriptions: Type.Integer(),
  source: Type.Union([Type.Literal("tenant"), Type.Literal("default")]),
  subscriptions: Type.Integer(),
});

/** A tenant's limits: read by the admin or the tenant's own token, set by the admin only. */
export function tenantRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/tenants/:tenant_id/limits",
      {
        schema: {
          summary: "A tenant's limits and its subscriptions now (admin, or the tenant's own token)",
          params: TenantParams,
          response: { 200: TenantLimits, ...errorResponses },
        },
      },
      async (req) => getTenantLimits(ctx, req.actor, req.params.tenant_id),
    );

    app.put(
      "/tenants/:tenant_id/limits",
      {
        schema: {
          summary: "Admin only: set a tenant's subscription limit",
          params: TenantParams,
          body: Type.Object(
            {
              // Bounds checked by the service: 422 out_of_range naming them (0..MAX_SUBSCRIPTIONS_LIMIT).
              max_subscriptions: Type.Integer(),
              reason: Type.Optional(Type.String({ maxLength: 1000 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: TenantLimits, ...errorResponses },
        },
      },
      async (req) => setTenantLimits(ctx, req.actor, req.params.tenant_id, req.body),
    );

    app.delete(
      "/tenants/:tenant_id/limits",
      {
        schema: {
          summary: "Admin only: remove a tenant's own limits; the deployment's defaults apply again",
          params: TenantParams,
          querystring: Type.Object(
            { reason: Type.Optional(Type.String({ maxLength: 1000 })) },
            { additionalProperties: false },
          ),
          response: { 200: TenantLimits, ...errorResponses },
        },
      },
      async (req) =>
        setTenantLimits(ctx, req.actor, req.params.tenant_id, {
          max_subscriptions: null,
          reason: req.query.reason,
        }),
    );
  };
}
