import { randomInt } from "node:crypto";
import type { Db, Queryable } from "./db.ts";

/**
 * Advisory-lock key space of dispatcher sessions (two-key form: this, session_key). A dispatcher holds its
 * key with a session-level lock on a connection of its own for as long as the process lives.
 */
export const SESSION_LOCK_SPACE = 0x48524c45;

/** How long after a server restart a registered dispatcher has to register again before it counts as gone. */
const REREGISTER_GRACE = "10 seconds";

/** Tries before giving up on finding a free session key (a clash needs another live session on the same key). */
const KEY_TRIES = 8;

/**
 * Registers `owner` (a dispatcher's lease owner) under a random session key whose advisory lock this
 * session takes first: the row is written only if the lock was free, so a registered key is always one this
 * session holds. Keys are random, not a sequence, because advisory locks are per database while this table
 * is per schema: two deployments (or test schemas) in one database must not share keys. Called again on a
 * new connection after the old one was lost: the row gets the new key, and `registered_at` tells the check
 * below the process is alive again.
 */
export async function registerSession(session: Queryable, owner: string): Promise<number> {
  for (let i = 0; i < KEY_TRIES; i++) {
    const key = randomInt(1, 2 ** 31);
    const res = await session.query<{ session_key: number }>(
      `WITH lock AS (SELECT pg_try_advisory_lock(${SESSION_LOCK_SPACE}, $2::int) AS ok)
       INSERT INTO dispatcher_sessions (owner, session_key) SELECT $1, $2 FROM lock WHERE lock.ok
       ON CONFLICT (owner) DO UPDATE SET session_key = excluded.session_key, registered_at = now()
       RETURNING session_key`,
      [owner, key],
    );
    if (res.rows[0]) return key;
  }
  throw new Error(`no free dispatcher session key for ${owner} after ${KEY_TRIES} tries`);
}

/** Forgets `owner` at a clean stop (its in-flight rows are recorded by then); the lock goes with the session. */
export async function forgetSession(q: Queryable, owner: string): Promise<void> {
  await q.query("DELETE FROM dispatcher_sessions WHERE owner = $1", [owner]);
}

/**
 * Owners of registered dispatchers whose session is gone: nobody holds their lock. A session lost to a
 * server restart (registered before the server started) counts only once the process has had
 * REREGISTER_GRACE to register again. As SQL, for the settle statement (src/store/record.ts).
 */
export const LOST_OWNERS_SQL = `
  SELECT w.owner FROM dispatcher_sessions w
  WHERE NOT EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.classid = ${SESSION_LOCK_SPACE}::oid
        AND l.objid = w.session_key::oid AND l.objsubid = 2 AND l.granted)
    AND (w.registered_at > pg_postmaster_start_time()
         OR now() > pg_postmaster_start_time() + interval '${REREGISTER_GRACE}')`;

/** Removes registrations of gone dispatchers that own no in-flight row any more. */
export async function pruneLostSessions(q: Queryable): Promise<number> {
  const res = await q.query(
    `DELETE FROM dispatcher_sessions WHERE owner IN (${LOST_OWNERS_SQL})
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.status = 'in_flight' AND d.lease_owner = dispatcher_sessions.owner)`,
  );
  return res.rowCount;
}

/**
 * The embedded store serves one process, so the dispatchers running in it are every live owner there is:
 * an in-flight row of any other owner was left by a process that died.
 */
const embeddedOwners = new WeakMap<Db, Set<string>>();

/** Records a dispatcher of this process as live on the embedded store `db` (undo with the returned function). */
export function registerLocalOwner(db: Db, owner: string): () => void {
  let owners = embeddedOwners.get(db);
  if (!owners) {
    owners = new Set();
    embeddedOwners.set(db, owners);
  }
  owners.add(owner);
  return () => owners.delete(owner);
}

/** The live owners of the embedded store `db` (null on PostgreSQL, where sessions tell). */
export function localOwners(db: Db): string[] | null {
  return db.kind === "embedded" ? [...(embeddedOwners.get(db) ?? [])] : null;
}
