import { HeraldError, notFound } from "../errors.ts";
import type { Queryable } from "../store/db.ts";
import { deliveriesOfEvent, findByIdempotencyKeys, findEvent, type NewEvent } from "../store/events.ts";
import { insertAndFanOut } from "../store/fan-out.ts";
import type { DeliveryRow, EventRow } from "../store/types.ts";
import { AcceptGroup } from "./accept-group.ts";
import { type Actor, type ServiceContext, tenantScope } from "./context.ts";
import { checkPayload, checkText, timestamp } from "./input.ts";

export interface EventInput {
  tenant_id?: string | undefined;
  event_type: string;
  aggregate_id?: string | null | undefined;
  occurred_at?: string | undefined;
  payload: unknown;
  idempotency_key?: string | null | undefined;
  source_txn_id?: string | null | undefined;
}

export interface AcceptedEvent {
  event_id: number;
  /** Deliveries this call queued (0 for a repeat of an idempotency key). */
  deliveries: number;
  duplicate: boolean;
}

/** Resolves the tenant and checks the bounds of one event; `field` prefixes names in batch errors. */
export function normaliseEvent(actor: Actor, input: EventInput, maxBodyBytes: number, field = ""): NewEvent {
  const scope = tenantScope(actor);
  let tenantId = input.tenant_id;
  if (scope !== null) {
    if (tenantId !== undefined && tenantId !== scope) {
      throw new HeraldError("forbidden", `${field}tenant_id "${tenantId}" is not the token's tenant`);
    }
    tenantId = scope;
  }
  if (tenantId === undefined || tenantId === "") {
    throw new HeraldError("invalid_field", `${field}tenant_id is required with the admin token`);
  }
  for (const [name, value] of [
    ["tenant_id", tenantId],
    ["event_type", input.event_type],
    ["aggregate_id", input.aggregate_id],
    ["idempotency_key", input.idempotency_key],
    ["source_txn_id", input.source_txn_id],
  ] as const) {
    checkText(`${field}${name}`, value);
  }
  checkPayload(`${field}payload`, input.payload, maxBodyBytes);
  const occurredAt = timestamp(`${field}occurred_at`, input.occurred_at) ?? new Date();
  return {
    tenant_id: tenantId,
    event_type: input.event_type,
    aggregate_id: input.aggregate_id ?? null,
    occurred_at: occurredAt,
    payload: input.payload,
    idempotency_key: input.idempotency_key ?? null,
    source_txn_id: input.source_txn_id ?? null,
  };
}

/**
 * Inserts events and fans them out with one statement on `q` (src/store/fan-out.ts): a transaction of the
 * caller's, or the database itself (then the statement commits alone). One attempt-1 pending delivery per
 * matching live subscription (active or paused), each at its subscription's next position, taken under the
 * subscription's row lock. A subscription whose pending count reaches its ceiling is paused by the same
 * statement, with an audit row. `opts.onlySubscriptionIds` restricts the fan-out to those subscriptions
 * (re-trigger jobs); by default every matching one is a target. An event repeating an existing
 * (tenant, idempotency key) is reported with the existing event's id and fans out nothing.
 */
export async function acceptWith(
  q: Queryable,
  events: readonly NewEvent[],
  opts: { onlySubscriptionIds?: readonly string[] } = {},
): Promise<{ accepted: AcceptedEvent[]; queuedFor: string[]; paused: string[] }> {
  const { inserted, queuedFor, paused } = await insertAndFanOut(q, events, opts.onlySubscriptionIds);
  const accepted: AcceptedEvent[] = events.map(() => ({ event_id: 0, deliveries: 0, duplicate: true }));
  for (const row of inserted) {
    accepted[row.ord] = { event_id: row.event_id, deliveries: row.deliveries, duplicate: false };
  }
  const repeats = events.map((e, i) => ({ e, i })).filter(({ i }) => accepted[i]!.duplicate);
  if (repeats.length > 0) {
    const found = await findByIdempotencyKeys(
      q,
      repeats.map(({ e }) => e.tenant_id),
      repeats.map(({ e }) => e.idempotency_key ?? ""),
    );
    const byKey = new Map(found.map((f) => [`${f.tenant_id}\u0000${f.idempotency_key}`, f.event_id]));
    for (const { e, i } of repeats) {
      const id = byKey.get(`${e.tenant_id}\u0000${e.idempotency_key}`);
      if (id === undefined) throw new Error("idempotency key conflict without an existing event");
      accepted[i] = { event_id: id, deliveries: 0, duplicate: true };
    }
  }
  return { accepted, queuedFor, paused };
}

/**
 * Accepts events (one or a batch) in one transaction, shared with other requests arriving at the same
 * time (group commit); duplicates by idempotency key fan out nothing. In a batch, errors name the event
 * (`events[3].occurred_at`), even in a batch of one.
 */
export async function acceptEvents(
  ctx: ServiceContext,
  actor: Actor,
  inputs: readonly EventInput[],
  batch = inputs.length > 1,
): Promise<AcceptedEvent[]> {
  const events = inputs.map((e, i) =>
    normaliseEvent(actor, e, ctx.settings.maxBodyBytes, batch ? `events[${i}].` : ""),
  );
  return acceptGroupOf(ctx).submit(events);
}

const groups = new WeakMap<ServiceContext, AcceptGroup<AcceptedEvent>>();

/** The process's group commit for accepting events (src/service/accept-group.ts), one per context. */
function acceptGroupOf(ctx: ServiceContext): AcceptGroup<AcceptedEvent> {
  let group = groups.get(ctx);
  if (!group) {
    group = new AcceptGroup(
      ctx.db,
      (q, events) => acceptWith(q, events),
      (queuedFor, paused) => {
        if (queuedFor.length > 0) ctx.hooks.queued(queuedFor);
        for (const id of paused) ctx.hooks.subscriptionChanged(id, "paused");
      },
    );
    groups.set(ctx, group);
  }
  return group;
}

export async function getEvent(
  ctx: ServiceContext,
  actor: Actor,
  eventId: number,
): Promise<{ event: EventRow; deliveries: DeliveryRow[] }> {
  const event = await findEvent(ctx.db, eventId, tenantScope(actor));
  if (!event) throw notFound("event", eventId);
  return { event, deliveries: await deliveriesOfEvent(ctx.db, eventId) };
}
