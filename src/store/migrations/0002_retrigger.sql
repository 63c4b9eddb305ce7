-- Herald schema, version 2: durable bulk re-trigger jobs (docs/retrigger.md).

CREATE TABLE retrigger_jobs (
  job_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id            text        NOT NULL,
  event_type           text        NOT NULL,
  -- How the items were chosen: 'window' (occurred_at range), 'aggregate_ids' or 'event_ids'; the
  -- selection as given (without the ID list, which lives in retrigger_items) is kept in `selection`.
  selection_kind       text        NOT NULL CHECK (selection_kind IN ('window', 'aggregate_ids', 'event_ids')),
  selection            jsonb       NOT NULL,
  occurred_after       timestamptz,
  occurred_before      timestamptz,
  -- Only this subscription receives the re-emitted events (null: every matching one of the tenant).
  subscription_id      text,
  batch_size           integer     NOT NULL CHECK (batch_size BETWEEN 1 AND 1000),
  delay_ms             integer     NOT NULL CHECK (delay_ms BETWEEN 0 AND 3600000),
  chunk_budget_ms      integer     NOT NULL CHECK (chunk_budget_ms BETWEEN 1000 AND 600000),
  skip_delivered_after timestamptz,
  -- pending (not started) → running → completed; cancelled and failed stop it (failed can be resumed).
  status               text        NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'completed', 'cancelled', 'failed')),
  -- Counters, changed in the same transaction as the item rows they count.
  total                integer     NOT NULL CHECK (total >= 0),
  sent                 integer     NOT NULL DEFAULT 0,
  skipped              integer     NOT NULL DEFAULT 0,
  failed               integer     NOT NULL DEFAULT 0,
  chunks_done          integer     NOT NULL DEFAULT 0,
  -- The next chunk may start at this time (delay_ms after the previous chunk; now() when resumed).
  next_run_at          timestamptz NOT NULL DEFAULT now(),
  -- The chunk owner: a dispatcher holds the job only while it runs a chunk, renewing the lease with
  -- every item; an expired lease makes the job claimable by any live dispatcher.
  lease_owner          text,
  lease_expires_at     timestamptz,
  -- Consecutive chunks that ended in an error; at the limit the job becomes 'failed'.
  error_count          integer     NOT NULL DEFAULT 0,
  last_error           text,
  created_by           text        NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  started_at           timestamptz,
  finished_at          timestamptz,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT retrigger_jobs_counts CHECK (sent + skipped + failed <= total)
);
CREATE INDEX retrigger_jobs_tenant ON retrigger_jobs (tenant_id, job_id DESC);
-- The runner's entry point: jobs that still have work.
CREATE INDEX retrigger_jobs_runnable ON retrigger_jobs (next_run_at) WHERE status IN ('pending', 'running');

CREATE TABLE retrigger_items (
  job_id           bigint      NOT NULL REFERENCES retrigger_jobs (job_id),
  -- 1-based position in the job: items run in this order.
  ordinal          integer     NOT NULL,
  -- The ID as the operator gave it (an aggregate ID, or an event ID in decimal).
  requested_id     text        NOT NULL,
  -- The event it resolved to when the job was created (null when it did not resolve).
  source_event_id  bigint,
  outcome          text        NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'sent', 'skipped', 'failed')),
  -- Why (a code from src/domain/retrigger.ts) and the specifics, for skipped and failed items (and
  -- sent items that skipped some subscriptions).
  reason           text,
  detail           text,
  new_event_id     bigint,
  deliveries       integer,
  processed_at     timestamptz,
  PRIMARY KEY (job_id, ordinal),
  CONSTRAINT retrigger_items_requested UNIQUE (job_id, requested_id)
);
CREATE INDEX retrigger_items_pending ON retrigger_items (job_id, ordinal) WHERE outcome = 'pending';

-- Re-emitted events by source (and job): "already done by this job", and the skip rule for events
-- without an aggregate. Only re-emitted events have an entry, so ordinary ingest pays nothing.
CREATE INDEX events_retrigger_of ON events (retrigger_of, job_id) WHERE retrigger_of IS NOT NULL;
-- Aggregate IDs of another tenant (the tenant guard names them "other tenant").
CREATE INDEX events_aggregate_type ON events (aggregate_id, event_type) WHERE aggregate_id IS NOT NULL;
