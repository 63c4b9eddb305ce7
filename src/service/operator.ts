import { type Diagnosis, diagnose, type HeadAttempt } from "../domain/diagnosis.ts";
import { HeraldError, notFound } from "../errors.ts";
import { insertAudit } from "../store/audit.ts";
import { findEvent } from "../store/events.ts";
import {
  attemptsOf,
  type DeliveryFilter,
  deadEndsOfEvent,
  findDelivery,
  findHead,
  hasActiveRow,
  listDeliveries,
  makeDueNow,
  markReplayed,
  moveEventToDlq,
  pauseAtDlqCeiling,
  type QueueCounts,
  queueCounts,
  queueReplays,
  replacePayload,
  selectDlqForReplay,
} from "../store/operator.ts";
import { findSubscription } from "../store/subscriptions.ts";
import type { DeliveryRow, EventRow } from "../store/types.ts";
import { type Actor, actorName, type ServiceContext, tenantScope } from "./context.ts";
import { checkPayload, checkText, timestamp } from "./input.ts";
import { toPage } from "./page.ts";
import { lockVisibleSubscription } from "./subscriptions.ts";

export interface HeadView {
  subscription_id: string;
  ordering: string;
  status: string;
  pause_reason: string | null;
  head: { event: EventRow; attempts: DeliveryRow[] } | null;
  counts: QueueCounts & { pending_ceiling: number; dlq_ceiling: number };
  diagnosis: Diagnosis;
}

function toAttempts(rows: readonly DeliveryRow[]): HeadAttempt[] {
  return rows.map((d) => ({
    attempt_number: d.attempt_number,
    status: d.status,
    error_kind: d.error_kind,
    response_status: d.response_status,
    attempted_at: d.attempted_at,
  }));
}

/**
 * The head of a queue, every attempt of it, the counts, and the runbook branch that applies. When the
 * queue's last head went to the DLQ and the subscription is still paused, that terminated event is
 * shown as the head (the runbook's "head already in DLQ: resume").
 */
export async function headDiagnosis(ctx: ServiceContext, actor: Actor, id: string): Promise<HeadView> {
  const sub = await findSubscription(ctx.db, id, tenantScope(actor));
  if (!sub) throw notFound("subscription", id);
  const current = await findHead(ctx.db, id);
  let head: HeadView["head"] = null;
  if (current) {
    head = { event: current.event, attempts: await attemptsOf(ctx.db, id, current.event.event_id) };
  }
  if (
    sub.status === "paused" &&
    sub.last_delivered_event_id !== null &&
    (!head || head.attempts.every((a) => !a.attempted_at))
  ) {
    const last = await attemptsOf(ctx.db, id, sub.last_delivered_event_id);
    if (last.at(-1)?.status === "dlq") {
      const ev = await findEvent(ctx.db, sub.last_delivered_event_id, null);
      if (ev) head = { event: ev, attempts: last };
    }
  }
  const counts = await queueCounts(ctx.db, id, head?.event.event_id ?? null);
  const diagnosis = diagnose({
    ordering: sub.ordering,
    status: sub.status,
    pause_reason: sub.pause_reason,
    pending_count: sub.pending_count,
    in_flight_count: counts.in_flight,
    dlq_count: counts.dlq,
    pending_ceiling: sub.pending_ceiling,
    failed_last_hour: counts.failed_last_hour,
    head: head ? { event_id: head.event.event_id, attempts: toAttempts(head.attempts) } : null,
    recent_errors_other_events: counts.other_errors_last_hour,
  });
  return {
    subscription_id: id,
    ordering: sub.ordering,
    status: sub.status,
    pause_reason: sub.pause_reason,
    head,
    counts: { ...counts, pending_ceiling: sub.pending_ceiling, dlq_ceiling: sub.dlq_ceiling },
    diagnosis,
  };
}

/**
 * Operator override: the head's pending/in-flight rows go to the DLQ with "operator drop: <reason>", the
 * cursor moves past it, all in one audited transaction. Refused on an unordered subscription, on an
 * empty queue, and when `expectedEventId` is given and the head is another event (so a retried request
 * cannot drop a second head).
 */
export async function dropHead(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  input: { reason: string; event_id?: number | undefined },
): Promise<{ event_id: number; moved_to_dlq: number; last_delivered_event_id: number | null }> {
  const reason = input.reason.trim();
  if (!reason) throw new HeraldError("invalid_field", "reason must not be empty");
  const out = await ctx.db.transaction(async (tx) => {
    const sub = await lockVisibleSubscription(tx, actor, id);
    if (sub.ordering !== "ordered") {
      throw new HeraldError(
        "conflict",
        "drop head applies to ordered subscriptions only (an unordered queue has no blocking head)",
      );
    }
    const head = await findHead(tx, id);
    if (!head) throw new HeraldError("conflict", "the queue is empty: there is no head to drop");
    if (input.event_id !== undefined && head.event.event_id !== input.event_id) {
      throw new HeraldError(
        "conflict",
        `the head moved: it is event ${head.event.event_id}, not event_id ${input.event_id}; nothing was dropped`,
      );
    }
    const moved = await moveEventToDlq(tx, id, head.event.event_id, `operator drop: ${reason}`);
    const cursor = Math.max(sub.last_delivered_event_id ?? 0, head.event.event_id);
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "subscription.head_dropped",
        tenant_id: sub.tenant_id,
        subscription_id: id,
        reason,
        before: { head_event_id: head.event.event_id, last_delivered_event_id: sub.last_delivered_event_id },
        after: { moved_to_dlq: moved, last_delivered_event_id: cursor },
      },
    ]);
    const paused = await pauseAtDlqCeiling(tx, [id]);
    return { event_id: head.event.event_id, moved_to_dlq: moved, last_delivered_event_id: cursor, paused };
  });
  if (out.paused.length > 0) ctx.hooks.subscriptionChanged(id, "paused");
  ctx.hooks.queued([id]);
  return {
    event_id: out.event_id,
    moved_to_dlq: out.moved_to_dlq,
    last_delivered_event_id: out.last_delivered_event_id,
  };
}

/** Replay one delivery: a fresh attempt-1 row of the same message (same webhook-id) at the queue's tail. */
export async function replayDelivery(
  ctx: ServiceContext,
  actor: Actor,
  deliveryId: number,
): Promise<{ delivery_id: number; replay_of: number; webhook_id: string }> {
  const out = await ctx.db.transaction(async (tx) => {
    const source = await findDelivery(tx, deliveryId, tenantScope(actor));
    if (!source) throw notFound("delivery", deliveryId);
    if (source.status === "pending" || source.status === "in_flight") {
      throw new HeraldError(
        "conflict",
        `delivery ${deliveryId} is still ${source.status}: it will be sent without a replay`,
      );
    }
    const sub = await lockVisibleSubscription(tx, actor, source.subscription_id);
    if (await hasActiveRow(tx, sub.subscription_id, source.event_id)) {
      throw new HeraldError("conflict", `event ${source.event_id} is already queued for this subscription`);
    }
    const { paused, deliveryIds } = await queueReplays(tx, sub, [source], actorName(actor));
    const created = deliveryIds[0]!;
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "delivery.replayed",
        tenant_id: sub.tenant_id,
        subscription_id: sub.subscription_id,
        before: { delivery_id: deliveryId, status: source.status },
        after: {
          delivery_id: created,
          event_id: source.event_id,
          webhook_id: source.webhook_id,
        },
      },
    ]);
    return {
      delivery_id: created,
      sub: sub.subscription_id,
      webhook_id: source.webhook_id,
      paused,
    };
  });
  if (out.paused) ctx.hooks.subscriptionChanged(out.sub, "paused");
  ctx.hooks.queued([out.sub]);
  return { delivery_id: out.delivery_id, replay_of: deliveryId, webhook_id: out.webhook_id };
}

export const MAX_REPLAY_BATCH = 10_000;

/**
 * Replay a batch from the DLQ by filter. Each matching DLQ row not replayed before gets a fresh attempt;
 * replayed rows are marked, so running the same replay twice sends nothing twice.
 */
export async function replayDlq(
  ctx: ServiceContext,
  actor: Actor,
  id: string,
  filter: {
    since?: string | undefined;
    until?: string | undefined;
    error_kind?: string | undefined;
    event_ids?: number[] | undefined;
  },
): Promise<{ queued: number; more: boolean }> {
  const since = timestamp("since", filter.since);
  const until = timestamp("until", filter.until);
  const out = await ctx.db.transaction(async (tx) => {
    const sub = await lockVisibleSubscription(tx, actor, id);
    const rows = await selectDlqForReplay(tx, id, {
      since,
      until,
      error_kind: filter.error_kind,
      event_ids: filter.event_ids,
      limit: MAX_REPLAY_BATCH + 1,
    });
    const batch = rows.slice(0, MAX_REPLAY_BATCH);
    // One replay per event, even if the DLQ holds several rows of it.
    const seen = new Set<number>();
    const sources = batch.filter((r) => {
      if (seen.has(r.event_id)) return false;
      seen.add(r.event_id);
      return true;
    });
    const { queued, paused } = await queueReplays(tx, sub, sources, actorName(actor));
    const covered = new Set(sources.map((r) => r.delivery_id));
    await markReplayed(
      tx,
      id,
      batch.filter((r) => !covered.has(r.delivery_id)).map((r) => r.delivery_id),
    );
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "subscription.dlq_replayed",
        tenant_id: sub.tenant_id,
        subscription_id: id,
        after: { filter, queued },
      },
    ]);
    return { queued, more: rows.length > MAX_REPLAY_BATCH, paused };
  });
  if (out.paused) ctx.hooks.subscriptionChanged(id, "paused");
  if (out.queued > 0) ctx.hooks.queued([id]);
  return { queued: out.queued, more: out.more };
}

/**
 * The runbook's "fix and replay": store a corrected payload (the old one is kept in the audit row), then
 * send the event again: a queued row in back-off becomes due now; where it already went to the DLQ, it
 * is replayed.
 */
export async function repairEvent(
  ctx: ServiceContext,
  actor: Actor,
  eventId: number,
  input: { payload: unknown; reason?: string | undefined },
): Promise<{ event_id: number; rescheduled: string[]; replayed: string[] }> {
  checkPayload("payload", input.payload, ctx.settings.maxBodyBytes);
  checkText("reason", input.reason);
  const out = await ctx.db.transaction(async (tx) => {
    const old = await replacePayload(tx, eventId, tenantScope(actor), input.payload);
    if (!old) throw notFound("event", eventId);
    const rescheduled = await makeDueNow(tx, eventId);
    const replayed: string[] = [];
    for (const row of await deadEndsOfEvent(tx, eventId)) {
      const sub = await lockVisibleSubscription(tx, actor, row.subscription_id);
      await queueReplays(tx, sub, [row], actorName(actor));
      replayed.push(row.subscription_id);
    }
    await insertAudit(tx, [
      {
        actor: actorName(actor),
        action: "event.repaired",
        tenant_id: old.tenant_id,
        reason: input.reason ?? null,
        before: { event_id: eventId, payload: old.old },
        after: { event_id: eventId, payload: input.payload, rescheduled, replayed },
      },
    ]);
    return { rescheduled, replayed };
  });
  const touched = [...new Set([...out.rescheduled, ...out.replayed])];
  if (touched.length > 0) ctx.hooks.queued(touched);
  return { event_id: eventId, ...out };
}

export async function listDeliveryRows(
  ctx: ServiceContext,
  actor: Actor,
  f: Omit<DeliveryFilter, "tenantId">,
): Promise<{ items: DeliveryRow[]; next_cursor: number | null }> {
  const rows = await listDeliveries(ctx.db, { ...f, tenantId: tenantScope(actor), limit: f.limit + 1 });
  return toPage(rows, f.limit, (r) => r.delivery_id);
}
