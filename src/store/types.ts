import type { DeliveryStatus } from "../domain/delivery-state.ts";
import type { ErrorKind } from "../domain/error-kind.ts";

export type Ordering = "ordered" | "unordered";
export type SubscriptionStatus = "active" | "paused";
export type PauseReason = "manual" | "pending_ceiling" | "dlq_ceiling";

export interface SubscriptionRow {
  subscription_id: string;
  tenant_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  ordering: Ordering;
  status: SubscriptionStatus;
  pause_reason: PauseReason | null;
  paused_at: Date | null;
  pending_ceiling: number;
  dlq_ceiling: number;
  max_in_flight: number;
  last_delivered_event_id: number | null;
  next_position: number;
  pending_count: number;
  dlq_count: number;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export interface EventRow {
  event_id: number;
  tenant_id: string;
  event_type: string;
  aggregate_id: string | null;
  occurred_at: Date;
  accepted_at: Date;
  payload: unknown;
  idempotency_key: string | null;
  source_txn_id: string | null;
  retrigger_of: number | null;
  job_id: number | null;
}

export interface DeliveryRow {
  delivery_id: number;
  subscription_id: string;
  event_id: number;
  position: number;
  webhook_id: string;
  attempt_number: number;
  status: DeliveryStatus;
  scheduled_at: Date;
  attempted_at: Date | null;
  completed_at: Date | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  response_status: number | null;
  response_body: string | null;
  error_kind: ErrorKind | null;
  error_detail: string | null;
  latency_ms: number | null;
  replay_of: number | null;
  replayed_at: Date | null;
  created_at: Date;
}

export interface AuditRow {
  audit_id: number;
  at: Date;
  actor: string;
  action: string;
  tenant_id: string | null;
  subscription_id: string | null;
  job_id: number | null;
  reason: string | null;
  before: unknown;
  after: unknown;
}

export interface NewAudit {
  actor: string;
  action: string;
  tenant_id?: string | null;
  subscription_id?: string | null;
  job_id?: number | null;
  reason?: string | null;
  before?: unknown;
  after?: unknown;
}
