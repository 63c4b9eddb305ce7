import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { ServiceContext } from "../../service/context.ts";
import { timestamp } from "../../service/input.ts";
import {
  dropHead,
  headDiagnosis,
  listDeliveryRows,
  repairEvent,
  replayDelivery,
  replayDlq,
} from "../../service/operator.ts";
import {
  Delivery,
  DeliveryStatusSchema,
  ErrorKindSchema,
  EventIdParams,
  errorResponses,
  HeadView,
  Id,
  SubscriptionIdParams,
} from "../schemas.ts";
import { viewDelivery, viewEvent } from "../views.ts";

/** The operator's actions on a stuck queue: head diagnosis, drop head, replays, repair, the error log. */
export function operatorRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      "/subscriptions/:id/head",
      {
        schema: {
          summary: "The head of the queue, its attempts, the counts, and the runbook diagnosis",
          params: SubscriptionIdParams,
          response: { 200: HeadView, ...errorResponses },
        },
      },
      async (req) => {
        const v = await headDiagnosis(ctx, req.actor, req.params.id);
        return {
          ...v,
          head: v.head
            ? { event: viewEvent(v.head.event), attempts: v.head.attempts.map(viewDelivery) }
            : null,
        };
      },
    );

    app.post(
      "/subscriptions/:id/head/drop",
      {
        schema: {
          summary: "Operator override: move the head to the DLQ and advance the cursor (ordered only)",
          params: SubscriptionIdParams,
          body: Type.Object(
            {
              reason: Type.String({ minLength: 1, maxLength: 1000 }),
              event_id: Type.Optional(Id()),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              event_id: Type.Integer(),
              moved_to_dlq: Type.Integer(),
              last_delivered_event_id: Type.Union([Type.Integer(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) => dropHead(ctx, req.actor, req.params.id, req.body),
    );

    app.post(
      "/subscriptions/:id/dlq/replay",
      {
        schema: {
          summary: "Replay DLQ deliveries by filter (each at most once)",
          params: SubscriptionIdParams,
          body: Type.Object(
            {
              since: Type.Optional(Type.String({ format: "date-time" })),
              until: Type.Optional(Type.String({ format: "date-time" })),
              error_kind: Type.Optional(ErrorKindSchema),
              event_ids: Type.Optional(Type.Array(Id(), { maxItems: 10000 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ queued: Type.Integer(), more: Type.Boolean() }), ...errorResponses },
        },
      },
      async (req) => replayDlq(ctx, req.actor, req.params.id, req.body),
    );

    app.get(
      "/deliveries",
      {
        schema: {
          summary: "Delivery rows, newest first, cursor-paged (the error log)",
          querystring: Type.Object(
            {
              subscription_id: Type.Optional(Type.String({ maxLength: 100 })),
              event_id: Type.Optional(Id()),
              status: Type.Optional(DeliveryStatusSchema),
              error_kind: Type.Optional(ErrorKindSchema),
              since: Type.Optional(Type.String({ format: "date-time" })),
              until: Type.Optional(Type.String({ format: "date-time" })),
              cursor: Type.Optional(Id()),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({
              items: Type.Array(Delivery),
              next_cursor: Type.Union([Type.Integer(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) => {
        const q = req.query;
        const r = await listDeliveryRows(ctx, req.actor, {
          subscription_id: q.subscription_id,
          event_id: q.event_id,
          status: q.status,
          error_kind: q.error_kind,
          since: timestamp("since", q.since),
          until: timestamp("until", q.until),
          before: q.cursor,
          limit: q.limit ?? 100,
        });
        return { items: r.items.map(viewDelivery), next_cursor: r.next_cursor };
      },
    );

    app.post(
      "/deliveries/:delivery_id/replay",
      {
        schema: {
          summary: "Replay one delivery: a fresh attempt 1 of the same message (same webhook-id)",
          params: Type.Object({ delivery_id: Id() }),
          response: {
            202: Type.Object({
              delivery_id: Type.Integer(),
              replay_of: Type.Integer(),
              webhook_id: Type.String(),
            }),
            ...errorResponses,
          },
        },
      },
      async (req, reply) =>
        reply.status(202).send(await replayDelivery(ctx, req.actor, req.params.delivery_id)),
    );

    app.post(
      "/events/:event_id/repair",
      {
        schema: {
          summary:
            "Fix and replay: store a corrected payload (old one kept in the audit log) and send it again",
          params: EventIdParams,
          body: Type.Object(
            { payload: Type.Unknown(), reason: Type.Optional(Type.String({ maxLength: 1000 })) },
            { additionalProperties: false, required: ["payload"] },
          ),
          response: {
            200: Type.Object({
              event_id: Type.Integer(),
              rescheduled: Type.Array(Type.String()),
              replayed: Type.Array(Type.String()),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) => repairEvent(ctx, req.actor, req.params.event_id, req.body),
    );
  };
}
