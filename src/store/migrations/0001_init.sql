-- Herald schema, version 1. Tables are private to Herald: read them through the API.

CREATE TABLE events (
  event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       text        NOT NULL,
  event_type      text        NOT NULL,
  aggregate_id    text,
  occurred_at     timestamptz NOT NULL,
  accepted_at     timestamptz NOT NULL DEFAULT now(),
  payload         jsonb       NOT NULL,
  idempotency_key text,
  source_txn_id   text,
  retrigger_of    bigint REFERENCES events (event_id),
  job_id          bigint,
  CONSTRAINT events_idempotency UNIQUE (tenant_id, idempotency_key)
);
-- Re-trigger selection: latest event of a type per aggregate, and windows by occurred_at.
CREATE INDEX events_tenant_type_aggregate ON events (tenant_id, event_type, aggregate_id, event_id DESC);
CREATE INDEX events_tenant_type_occurred ON events (tenant_id, event_type, occurred_at);

CREATE TABLE subscriptions (
  subscription_id          text PRIMARY KEY,
  tenant_id                text        NOT NULL,
  url                      text        NOT NULL,
  description              text,
  event_types              text[]      NOT NULL,
  ordering                 text        NOT NULL CHECK (ordering IN ('ordered', 'unordered')),
  status                   text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
  pause_reason             text CHECK (pause_reason IN ('manual', 'pending_ceiling', 'dlq_ceiling')),
  paused_at                timestamptz,
  pending_ceiling          integer     NOT NULL,
  dlq_ceiling              integer     NOT NULL,
  max_in_flight            integer     NOT NULL DEFAULT 10 CHECK (max_in_flight BETWEEN 1 AND 1000),
  last_delivered_event_id  bigint,
  -- Queue position counter: the next delivery of this subscription gets next_position + 1, assigned
  -- under this row's lock in the accepting transaction, so positions follow commit order exactly.
  next_position            bigint      NOT NULL DEFAULT 0,
  -- Maintained counters (pending + in_flight, and dlq), changed in the same transaction as the rows.
  pending_count            integer     NOT NULL DEFAULT 0,
  dlq_count                integer     NOT NULL DEFAULT 0,
  secret                   text        NOT NULL,
  previous_secret          text,
  previous_secret_expires_at timestamptz,
  last_claimed_at          timestamptz,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  deleted_at               timestamptz,
  CONSTRAINT subscriptions_pause_reason CHECK ((status = 'paused') = (pause_reason IS NOT NULL))
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id, subscription_id) WHERE deleted_at IS NULL;
-- The claim's entry point: live subscriptions with work.
CREATE INDEX subscriptions_with_work ON subscriptions (last_claimed_at NULLS FIRST)
  WHERE deleted_at IS NULL AND status = 'active' AND pending_count > 0;

CREATE TABLE deliveries (
  delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id text        NOT NULL REFERENCES subscriptions (subscription_id),
  event_id        bigint      NOT NULL REFERENCES events (event_id),
  -- Position in the subscription's queue (shared by every attempt of one event).
  position        bigint      NOT NULL,
  webhook_id      text        NOT NULL,
  attempt_number  smallint    NOT NULL CHECK (attempt_number >= 1),
  status          text        NOT NULL CHECK (status IN ('pending', 'in_flight', 'delivered', 'failed', 'dlq')),
  scheduled_at    timestamptz NOT NULL DEFAULT now(),
  attempted_at    timestamptz,
  completed_at    timestamptz,
  lease_owner     text,
  lease_expires_at timestamptz,
  response_status integer,
  response_body   text,
  error_kind      text CHECK (error_kind IN ('dns', 'connection', 'tls', 'timeout', '4xx', '5xx', 'ssrf_blocked',
                                             'response_too_large', 'unknown')),
  error_detail    text,
  latency_ms      integer,
  replay_of       bigint,
  replayed_at     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- Head of a queue: the active row with the lowest position (one index probe per subscription).
CREATE INDEX deliveries_active_by_position ON deliveries (subscription_id, position)
  WHERE status IN ('pending', 'in_flight');
-- Earliest due retry (the scheduler's wake-up time).
CREATE INDEX deliveries_pending_due ON deliveries (scheduled_at) WHERE status = 'pending';
-- Expired leases.
CREATE INDEX deliveries_in_flight_lease ON deliveries (lease_expires_at) WHERE status = 'in_flight';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_subscription_recent ON deliveries (subscription_id, delivery_id DESC);
CREATE INDEX deliveries_errors ON deliveries (subscription_id, error_kind, delivery_id DESC)
  WHERE status IN ('failed', 'dlq');

CREATE TABLE audit_log (
  audit_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  actor           text        NOT NULL,
  action          text        NOT NULL,
  tenant_id       text,
  subscription_id text,
  job_id          bigint,
  reason          text,
  before          jsonb,
  after           jsonb
);
CREATE INDEX audit_subscription ON audit_log (subscription_id, audit_id DESC);
CREATE INDEX audit_job ON audit_log (job_id, audit_id DESC);

CREATE TABLE tokens (
  token_id    text PRIMARY KEY,
  tenant_id   text        NOT NULL,
  name        text,
  token_hash  text        NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
