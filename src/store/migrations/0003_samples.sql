-- Herald schema, version 3: samples of each subscription's counts for the panel's 24-hour charts
-- (docs/panel.md), and indexes for the panel's error log.

-- One row per subscription per sampler tick in which its numbers changed (and at least one an hour
-- while they do not). `sampled_at` is the tick's start, binned to HERALD_SAMPLE_INTERVAL_MS, so
-- several samplers (one per dispatcher process) write each tick once. Pruned after about 48 hours.
CREATE TABLE subscription_samples (
  subscription_id text        NOT NULL,
  sampled_at      timestamptz NOT NULL,
  pending_count   integer     NOT NULL,
  dlq_count       integer     NOT NULL,
  paused          boolean     NOT NULL,
  PRIMARY KEY (subscription_id, sampled_at)
);
-- Pruning, and the charts' earliest sample.
CREATE INDEX subscription_samples_at ON subscription_samples (sampled_at);

-- The error log (failed and DLQ rows, newest first) and each subscription's last error: only failed
-- rows are indexed, so deliveries that succeed pay nothing for them.
CREATE INDEX deliveries_errors_by_subscription ON deliveries (subscription_id, delivery_id DESC)
  WHERE status IN ('failed', 'dlq');
CREATE INDEX deliveries_errors_by_id ON deliveries (delivery_id DESC) WHERE status IN ('failed', 'dlq');
