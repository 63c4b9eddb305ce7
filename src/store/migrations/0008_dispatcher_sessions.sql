-- Herald schema, version 8: dispatcher processes known to the database, so the in-flight rows of one
-- that died are taken back within seconds instead of after their lease (docs/delivery.md, "Crash recovery").
--
-- Each dispatcher on PostgreSQL registers its lease owner here and holds a session-level advisory lock
-- (key space 0x48524c45, key session_key: random, since advisory locks are per database and this table is
-- per schema) on a connection of its own for as long as it lives. The kernel closes a killed process's
-- sockets, PostgreSQL ends the session and releases the lock: a registered owner whose lock nobody holds is
-- gone, and its in-flight rows are settled as "worker lost" at once. The embedded store serves one process:
-- it registers nothing here, and an in-flight row whose owner is not running in that process is taken back.
CREATE TABLE dispatcher_sessions (
  owner          text        PRIMARY KEY,
  session_key    integer     NOT NULL,
  -- Last (re-)registration: a session lost to a server restart is not the process's death; the process
  -- registers again on its new connection (see src/store/sessions.ts).
  registered_at  timestamptz NOT NULL DEFAULT now()
);
