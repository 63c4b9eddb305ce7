import type { AuditRow, DeliveryRow, EventRow } from "../store/types.ts";

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function viewDelivery(d: DeliveryRow) {
  return {
    delivery_id: d.delivery_id,
    subscription_id: d.subscription_id,
    event_id: d.event_id,
    webhook_id: d.webhook_id,
    attempt_number: d.attempt_number,
    status: d.status,
    scheduled_at: d.scheduled_at.toISOString(),
    attempted_at: iso(d.attempted_at),
    completed_at: iso(d.completed_at),
    response_status: d.response_status,
    response_body: d.response_body,
    error_kind: d.error_kind,
    error_detail: d.error_detail,
    latency_ms: d.latency_ms,
    replay_of: d.replay_of,
    replayed_at: iso(d.replayed_at),
  };
}

export function viewEvent(e: EventRow) {
  return {
    event_id: e.event_id,
    tenant_id: e.tenant_id,
    event_type: e.event_type,
    aggregate_id: e.aggregate_id,
    occurred_at: e.occurred_at.toISOString(),
    accepted_at: e.accepted_at.toISOString(),
    payload: e.payload,
    idempotency_key: e.idempotency_key,
    source_txn_id: e.source_txn_id,
    retrigger_of: e.retrigger_of,
    job_id: e.job_id,
  };
}

export function viewAudit(a: AuditRow) {
  return {
    audit_id: a.audit_id,
    at: a.at.toISOString(),
    actor: a.actor,
    action: a.action,
    tenant_id: a.tenant_id,
    subscription_id: a.subscription_id,
    job_id: a.job_id,
    reason: a.reason,
    before: a.before,
    after: a.after,
  };
}
