-- Herald schema, version 5: counter updates on a subscription's row become HOT updates.
--
-- Every accept and every record changes pending_count. While pending_count was part of an index
-- (the predicate of subscriptions_with_work), PostgreSQL could not update the row in place (a HOT
-- update): each change wrote a new index entry in every index of the table, and lookups by id walked
-- the dead entries until vacuum. An ordered run over 1,000 subscriptions left 110,000 dead row versions
-- and no HOT update at all (bench/README.md). The index now reads a stored flag that changes only when a
-- queue becomes empty or non-empty; PostgreSQL compares the old and new values of indexed columns, so an
-- update that leaves the flag as it was stays on its page (fillfactor 50, migration 0004).
ALTER TABLE subscriptions ADD COLUMN has_work boolean GENERATED ALWAYS AS (pending_count > 0) STORED;
DROP INDEX subscriptions_with_work;
CREATE INDEX subscriptions_with_work ON subscriptions (subscription_id)
  WHERE deleted_at IS NULL AND status = 'active' AND has_work;
