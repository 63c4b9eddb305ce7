-- Herald schema, version 4: index paths for the claim that need no planner statistics, and no writes
-- to a subscription's row when a dispatcher only looks at its queue (bench/README.md, profile findings).

-- Unordered claims read due rows of one subscription in due order: one range scan that stops after the
-- rows it takes, however many rows wait in back-off or are not yet due.
CREATE INDEX deliveries_due_by_subscription ON deliveries (subscription_id, scheduled_at, position)
  WHERE status = 'pending';
-- The earliest future retry is found per subscription with work through the index above.
DROP INDEX deliveries_pending_due;

-- In-flight rows per subscription (max_in_flight) and expired leases; never more rows than POSTs in flight.
DROP INDEX deliveries_in_flight_lease;
CREATE INDEX deliveries_in_flight ON deliveries (subscription_id, lease_expires_at) WHERE status = 'in_flight';

-- Dispatchers walk the subscriptions with work in id order from a cursor they keep in memory, instead of
-- writing a last-claimed time to the row that every accept and every record also locks.
DROP INDEX subscriptions_with_work;
ALTER TABLE subscriptions DROP COLUMN last_claimed_at;
CREATE INDEX subscriptions_with_work ON subscriptions (subscription_id)
  WHERE deleted_at IS NULL AND status = 'active' AND pending_count > 0;

-- Statistics and clean-up keep pace with a queue table that changes fast (autovacuum, where it runs;
-- Herald's own check in src/store/statistics.ts where it does not).
ALTER TABLE deliveries SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_scale_factor = 0.05);
-- Room on each page for the counters' new row versions.
ALTER TABLE subscriptions SET (fillfactor = 50);
