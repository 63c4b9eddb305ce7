import { type TSchema, Type } from "typebox";
import { DELIVERY_STATUSES } from "../domain/delivery-state.ts";
import { ERROR_KINDS } from "../domain/error-kind.ts";
import { MAX_ID } from "../domain/input-rules.ts";

/** The error body every failure answers with. */
export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String() }) },
  { $id: "Error" },
);

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  422: ErrorBody,
} as const;

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** An event, delivery, job or audit id, or a cursor made of one: 1..MAX_ID (a bigint the API can hold). */
export const Id = () => Type.Integer({ minimum: 1, maximum: MAX_ID });

export const EventInput = Type.Object(
  {
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    event_type: Type.String({ minLength: 1, maxLength: 200 }),
    aggregate_id: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
    occurred_at: Type.Optional(Type.String({ format: "date-time" })),
    payload: Type.Unknown(),
    idempotency_key: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 500 }))),
    source_txn_id: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  },
  { additionalProperties: false, required: ["event_type", "payload"] },
);

export const MAX_BATCH = 1000;

export const EventBatchInput = Type.Object(
  { events: Type.Array(EventInput, { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);

export const AcceptedEvent = Type.Object({
  event_id: Type.Integer(),
  deliveries: Type.Integer(),
  duplicate: Type.Boolean(),
});

export const Delivery = Type.Object({
  delivery_id: Type.Integer(),
  subscription_id: Type.String(),
  event_id: Type.Integer(),
  webhook_id: Type.String(),
  attempt_number: Type.Integer(),
  status: Type.String(),
  scheduled_at: Type.String(),
  attempted_at: Nullable(Type.String()),
  completed_at: Nullable(Type.String()),
  response_status: Nullable(Type.Integer()),
  response_body: Nullable(Type.String()),
  error_kind: Nullable(Type.String()),
  error_detail: Nullable(Type.String()),
  latency_ms: Nullable(Type.Integer()),
  replay_of: Nullable(Type.Integer()),
  replayed_at: Nullable(Type.String()),
});

export const Event = Type.Object({
  event_id: Type.Integer(),
  tenant_id: Type.String(),
  event_type: Type.String(),
  aggregate_id: Nullable(Type.String()),
  occurred_at: Type.String(),
  accepted_at: Type.String(),
  payload: Type.Unknown(),
  idempotency_key: Nullable(Type.String()),
  source_txn_id: Nullable(Type.String()),
  retrigger_of: Nullable(Type.Integer()),
  job_id: Nullable(Type.Integer()),
});

const Ordering = Type.Union([Type.Literal("ordered"), Type.Literal("unordered")]);
const Status = Type.Union([Type.Literal("active"), Type.Literal("paused")]);

export const Subscription = Type.Object({
  subscription_id: Type.String(),
  tenant_id: Type.String(),
  url: Type.String(),
  description: Nullable(Type.String()),
  event_types: Type.Array(Type.String()),
  ordering: Ordering,
  status: Status,
  pause_reason: Nullable(Type.String()),
  paused_at: Nullable(Type.String()),
  pending_ceiling: Type.Integer(),
  dlq_ceiling: Type.Integer(),
  max_in_flight: Type.Integer(),
  pending_count: Type.Integer(),
  dlq_count: Type.Integer(),
  last_delivered_event_id: Nullable(Type.Integer()),
  secret_rotation_ends_at: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export const CreateSubscription = Type.Object(
  {
    tenant_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    url: Type.String({ minLength: 1, maxLength: 2000 }),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
    event_types: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 100 }),
    ordering: Type.Optional(Ordering),
    pending_ceiling: Type.Optional(Type.Integer()),
    dlq_ceiling: Type.Optional(Type.Integer()),
    max_in_flight: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const UpdateSubscription = Type.Object(
  {
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
    event_types: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 100 }),
    ),
    pending_ceiling: Type.Optional(Type.Integer()),
    dlq_ceiling: Type.Optional(Type.Integer()),
    max_in_flight: Type.Optional(Type.Integer()),
    status: Type.Optional(Status),
    reason: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);

export const SubscriptionIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** Events and jobs are addressed by integer ids: decimal digits in the path (src/api/input.ts). */
export const EventIdParams = Type.Object({ event_id: Id() });

export const AuditEntry = Type.Object({
  audit_id: Type.Integer(),
  at: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  tenant_id: Nullable(Type.String()),
  subscription_id: Nullable(Type.String()),
  job_id: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
  before: Type.Unknown(),
  after: Type.Unknown(),
});

export const Diagnosis = Type.Object({
  branch: Type.String(),
  summary: Type.String(),
  actions: Type.Array(Type.String()),
});

export const HeadView = Type.Object({
  subscription_id: Type.String(),
  ordering: Type.String(),
  status: Type.String(),
  pause_reason: Nullable(Type.String()),
  head: Nullable(Type.Object({ event: Event, attempts: Type.Array(Delivery) })),
  counts: Type.Object({
    pending: Type.Integer(),
    in_flight: Type.Integer(),
    dlq: Type.Integer(),
    failed_last_hour: Type.Integer(),
    other_errors_last_hour: Type.Integer(),
    pending_ceiling: Type.Integer(),
    dlq_ceiling: Type.Integer(),
  }),
  diagnosis: Diagnosis,
});

export const ErrorKindSchema = Type.Union(ERROR_KINDS.map((k) => Type.Literal(k)));
export const DeliveryStatusSchema = Type.Union(DELIVERY_STATUSES.map((k) => Type.Literal(k)));
