import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { ServiceContext } from "../../service/context.ts";
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listSubscriptionViews,
  rotateSecret,
  updateSubscriptionFields,
} from "../../service/subscriptions.ts";
import {
  CreateSubscription,
  errorResponses,
  Subscription,
  SubscriptionIdParams,
  UpdateSubscription,
} from "../schemas.ts";

export function subscriptionRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/subscriptions",
      {
        schema: {
          summary: "Create a subscription; the signing secret is shown only in this answer",
          body: CreateSubscription,
          response: {
            201: Type.Intersect([Subscription, Type.Object({ secret: Type.String() })]),
            ...errorResponses,
          },
        },
      },
      async (req, reply) => {
        const { subscription, secret } = await createSubscription(ctx, req.actor, req.body);
        return reply.status(201).send({ ...subscription, secret });
      },
    );

    app.get(
      "/subscriptions",
      {
        schema: {
          summary: "List subscriptions",
          querystring: Type.Object(
            {
              status: Type.Optional(Type.Union([Type.Literal("active"), Type.Literal("paused")])),
              tenant_id: Type.Optional(Type.String({ maxLength: 200 })),
              cursor: Type.Optional(Type.String({ maxLength: 100 })),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              items: Type.Array(Subscription),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) =>
        listSubscriptionViews(ctx, req.actor, {
          status: req.query.status,
          tenant_id: req.query.tenant_id,
          after: req.query.cursor,
          limit: req.query.limit ?? 100,
        }),
    );

    app.get(
      "/subscriptions/:id",
      {
        schema: {
          summary: "One subscription",
          params: SubscriptionIdParams,
          response: { 200: Subscription, ...errorResponses },
        },
      },
      async (req) => getSubscription(ctx, req.actor, req.params.id),
    );

    app.patch(
      "/subscriptions/:id",
      {
        schema: {
          summary:
            'Change a subscription; {status:"paused"} pauses it (manual), {status:"active"} resumes it',
          params: SubscriptionIdParams,
          body: UpdateSubscription,
          response: { 200: Subscription, ...errorResponses },
        },
      },
      async (req) => updateSubscriptionFields(ctx, req.actor, req.params.id, req.body),
    );

    app.delete(
      "/subscriptions/:id",
      {
        schema: {
          summary: "Delete a subscription (its queued deliveries move to the DLQ)",
          params: SubscriptionIdParams,
          response: { 204: Type.Null(), ...errorResponses },
        },
      },
      async (req, reply) => {
        await deleteSubscription(ctx, req.actor, req.params.id);
        return reply.status(204).send(null);
      },
    );

    app.post(
      "/subscriptions/:id/rotate-secret",
      {
        schema: {
          summary: "New signing secret; the old one keeps signing alongside it for the overlap window",
          params: SubscriptionIdParams,
          body: Type.Optional(
            Type.Object({ overlap_seconds: Type.Optional(Type.Integer()) }, { additionalProperties: false }),
          ),
          response: {
            200: Type.Object({ secret: Type.String(), previous_secret_expires_at: Type.String() }),
            ...errorResponses,
          },
        },
      },
      async (req) => rotateSecret(ctx, req.actor, req.params.id, req.body?.overlap_seconds),
    );
  };
}
