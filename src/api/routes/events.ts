import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { HeraldError } from "../../errors.ts";
import type { ServiceContext } from "../../service/context.ts";
import { acceptEvents, getEvent } from "../../service/events.ts";
import {
  AcceptedEvent,
  Delivery,
  Event,
  EventBatchInput,
  EventIdParams,
  EventInput,
  errorResponses,
  MAX_BATCH,
} from "../schemas.ts";
import { viewDelivery, viewEvent } from "../views.ts";

const BATCH_BODY_LIMIT_FLOOR = 16 * 1024 * 1024;

export function eventRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/events",
      {
        schema: {
          summary: "Accept one event and fan it out to the matching subscriptions",
          headers: Type.Object({
            "idempotency-key": Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
          }),
          body: EventInput,
          response: { 202: AcceptedEvent, 200: AcceptedEvent, ...errorResponses },
        },
      },
      async (req, reply) => {
        const headerKey = req.headers["idempotency-key"];
        const body = { ...req.body };
        if (headerKey !== undefined) {
          if (body.idempotency_key != null && body.idempotency_key !== headerKey) {
            throw new HeraldError("invalid_field", "idempotency_key differs from the Idempotency-Key header");
          }
          body.idempotency_key = headerKey;
        }
        const [accepted] = await acceptEvents(ctx, req.actor, [body]);
        // A repeat answers 200 with the first event's id; a new event 202.
        return reply.status(accepted!.duplicate ? 200 : 202).send(accepted!);
      },
    );

    app.post(
      "/events/batch",
      {
        bodyLimit: Math.max(BATCH_BODY_LIMIT_FLOOR, ctx.settings.maxBodyBytes + 64 * 1024),
        schema: {
          summary: `Accept up to ${MAX_BATCH} events in one transaction`,
          body: EventBatchInput,
          response: { 202: Type.Object({ events: Type.Array(AcceptedEvent) }), ...errorResponses },
        },
      },
      async (req, reply) => {
        const accepted = await acceptEvents(ctx, req.actor, req.body.events, true);
        return reply.status(202).send({ events: accepted });
      },
    );

    app.get(
      "/events/:event_id",
      {
        schema: {
          summary: "An event and its deliveries",
          params: EventIdParams,
          response: {
            200: Type.Object({ event: Event, deliveries: Type.Array(Delivery) }),
            ...errorResponses,
          },
        },
      },
      async (req) => {
        const { event, deliveries } = await getEvent(ctx, req.actor, req.params.event_id);
        return { event: viewEvent(event), deliveries: deliveries.map(viewDelivery) };
      },
    );
  };
}
