import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type TSchema, Type } from "typebox";
import { MAX_ID_LENGTH, MAX_JOB_ITEMS } from "../../domain/retrigger.ts";
import type { ServiceContext } from "../../service/context.ts";
import {
  cancelRetrigger,
  createRetrigger,
  getRetrigger,
  listRetriggerItems,
  listRetriggers,
  resumeRetrigger,
} from "../../service/retrigger.ts";
import { errorResponses, Id } from "../schemas.ts";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const JobStatus = Type.Union([
  Type.Literal("pending"),
  Type.Literal("running"),
  Type.Literal("completed"),
  Type.Literal("cancelled"),
  Type.Literal("failed"),
]);
const ItemOutcome = Type.Union([
  Type.Literal("pending"),
  Type.Literal("sent"),
  Type.Literal("skipped"),
  Type.Literal("failed"),
]);

export const CreateRetrigger = Type.Object(
  {
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    event_type: Type.String({ minLength: 1, maxLength: 200 }),
    occurred_after: Type.Optional(Type.String({ format: "date-time" })),
    occurred_before: Type.Optional(Type.String({ format: "date-time" })),
    aggregate_ids: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: MAX_ID_LENGTH }))),
    event_ids: Type.Optional(Type.Array(Id())),
    subscription_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    batch_size: Type.Optional(Type.Integer()),
    delay_ms: Type.Optional(Type.Integer()),
    chunk_budget_ms: Type.Optional(Type.Integer()),
    skip_delivered_after: Type.Optional(Type.String({ format: "date-time" })),
    dry_run: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const RetriggerJob = Type.Object({
  job_id: Type.Integer(),
  tenant_id: Type.String(),
  event_type: Type.String(),
  selection: Type.Unknown(),
  subscription_id: Nullable(Type.String()),
  batch_size: Type.Integer(),
  delay_ms: Type.Integer(),
  chunk_budget_ms: Type.Integer(),
  skip_delivered_after: Nullable(Type.String()),
  status: JobStatus,
  total: Type.Integer(),
  completed: Type.Integer(),
  sent: Type.Integer(),
  skipped: Type.Integer(),
  failed: Type.Integer(),
  pending: Type.Integer(),
  chunks_done: Type.Integer(),
  interrupted: Type.Boolean(),
  lease_owner: Nullable(Type.String()),
  lease_expires_at: Nullable(Type.String()),
  next_chunk_at: Nullable(Type.String()),
  error_count: Type.Integer(),
  last_error: Nullable(Type.String()),
  created_by: Type.String(),
  created_at: Type.String(),
  started_at: Nullable(Type.String()),
  finished_at: Nullable(Type.String()),
  updated_at: Type.String(),
});

const RetriggerItem = Type.Object({
  ordinal: Type.Integer(),
  requested_id: Type.String(),
  source_event_id: Nullable(Type.Integer()),
  outcome: ItemOutcome,
  reason: Nullable(Type.String()),
  detail: Nullable(Type.String()),
  new_event_id: Nullable(Type.Integer()),
  deliveries: Nullable(Type.Integer()),
  processed_at: Nullable(Type.String()),
});

const RetriggerPreview = Type.Object({
  dry_run: Type.Literal(true),
  tenant_id: Type.String(),
  event_type: Type.String(),
  selection: Type.Unknown(),
  subscription_id: Nullable(Type.String()),
  skip_delivered_after: Nullable(Type.String()),
  total: Type.Integer(),
  would_trigger: Type.Integer(),
  would_skip: Type.Integer(),
  would_fail: Type.Integer(),
  plan: Type.Object({
    items: Type.Integer(),
    batch_size: Type.Integer(),
    delay_ms: Type.Integer(),
    chunk_budget_ms: Type.Integer(),
    chunks: Type.Integer(),
    pace_items_per_second: Type.Number(),
    estimated_duration_ms: Type.Integer(),
  }),
  items: Type.Array(
    Type.Object({
      requested_id: Type.String(),
      source_event_id: Nullable(Type.Integer()),
      outcome: Type.Union([
        Type.Literal("WOULD_TRIGGER"),
        Type.Literal("WOULD_SKIP"),
        Type.Literal("WOULD_FAIL"),
      ]),
      reason: Nullable(Type.String()),
      detail: Nullable(Type.String()),
      subscriptions: Type.Array(Type.String()),
    }),
  ),
});

const JobParams = Type.Object({ id: Id() });
const ReasonBody = Type.Optional(
  Type.Object({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false }),
);

/** Room for the largest ID list a job may hold. */
const CREATE_BODY_LIMIT = MAX_JOB_ITEMS * (MAX_ID_LENGTH + 8) + 64 * 1024;

export function retriggerRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      "/retriggers",
      {
        bodyLimit: CREATE_BODY_LIMIT,
        schema: {
          summary:
            "Create a re-trigger job (202), or with dry_run:true preview it per ID (200) without writing anything",
          body: CreateRetrigger,
          response: { 200: RetriggerPreview, 202: RetriggerJob, ...errorResponses },
        },
      },
      async (req, reply) => {
        const r = await createRetrigger(ctx, req.actor, req.body);
        return r.dryRun ? reply.status(200).send(r.preview) : reply.status(202).send(r.job);
      },
    );

    app.get(
      "/retriggers",
      {
        schema: {
          summary: "Re-trigger jobs, newest first",
          querystring: Type.Object(
            {
              status: Type.Optional(JobStatus),
              cursor: Type.Optional(Id()),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ items: Type.Array(RetriggerJob), next_cursor: Nullable(Type.Integer()) }),
            ...errorResponses,
          },
        },
      },
      async (req) =>
        listRetriggers(ctx, req.actor, {
          status: req.query.status,
          before: req.query.cursor,
          limit: req.query.limit ?? 100,
        }),
    );

    app.get(
      "/retriggers/:id",
      {
        schema: {
          summary: "A re-trigger job's status and progress (completed of total, counts per outcome)",
          params: JobParams,
          response: { 200: RetriggerJob, ...errorResponses },
        },
      },
      async (req) => getRetrigger(ctx, req.actor, req.params.id),
    );

    app.get(
      "/retriggers/:id/items",
      {
        schema: {
          summary: "A job's items in order with their outcomes (outcome=pending lists what is left)",
          params: JobParams,
          querystring: Type.Object(
            {
              outcome: Type.Optional(ItemOutcome),
              cursor: Type.Optional(Id()),
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Type.Object({ items: Type.Array(RetriggerItem), next_cursor: Nullable(Type.Integer()) }),
            ...errorResponses,
          },
        },
      },
      async (req) =>
        listRetriggerItems(ctx, req.actor, req.params.id, {
          outcome: req.query.outcome,
          after: req.query.cursor,
          limit: req.query.limit ?? 100,
        }),
    );

    app.post(
      "/retriggers/:id/resume",
      {
        schema: {
          summary: "Run the job's pending items again now (a failed or interrupted job; audited)",
          params: JobParams,
          body: ReasonBody,
          response: { 200: RetriggerJob, ...errorResponses },
        },
      },
      async (req) => resumeRetrigger(ctx, req.actor, req.params.id, req.body?.reason),
    );

    app.post(
      "/retriggers/:id/cancel",
      {
        schema: {
          summary: "Stop the job; its pending items stay pending and are not sent (audited)",
          params: JobParams,
          body: ReasonBody,
          response: { 200: RetriggerJob, ...errorResponses },
        },
      },
      async (req) => cancelRetrigger(ctx, req.actor, req.params.id, req.body?.reason),
    );
  };
}
