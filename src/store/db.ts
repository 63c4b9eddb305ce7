/**
 * The one database interface. Two implementations: PostgreSQL through `pg` (production, scale-out) and
 * PGlite (embedded, single process). The SQL is the same for both; nothing outside src/store talks SQL.
 */
export interface QueryResult<R> {
  rows: R[];
  /** Rows returned by a SELECT or touched by INSERT/UPDATE/DELETE. */
  rowCount: number;
}

export interface QueryOptions {
  /**
   * Prepare the statement under this name once per connection and reuse its plan (hot statements: claim,
   * record, accept). Only for constant SQL text. On PostgreSQL, outside a transaction, such a statement runs
   * in a session that keeps one generic plan for it (src/store/pg-db.ts): it must be written so that a plan
   * blind to its parameters stays an index probe. The embedded store does the same in its one session
   * (src/store/embedded-prepared.ts).
   */
  name?: string;
}

export interface Queryable {
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    opts?: QueryOptions,
  ): Promise<QueryResult<R>>;
}

/** A connection of its own, outside the pools, for state that lives as long as a session does. */
export interface DedicatedSession extends Queryable {
  /** Resolves when the connection ends for any reason other than close(). */
  readonly lost: Promise<void>;
  close(): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: "postgres" | "embedded";
  /** Opens a dedicated session (PostgreSQL only: the embedded store has one session, its process's). */
  dedicated?(): Promise<DedicatedSession>;
  /** Runs fn in one transaction (READ COMMITTED); commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs several statements separated by semicolons, no parameters (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** PostgreSQL error codes that mean "run the transaction again". */
export const RETRYABLE_SQLSTATES = new Set(["40001", "40P01"]);

export function sqlState(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/**
 * Runs `fn` again, up to `tries` times in all, while it fails with one of RETRYABLE_SQLSTATES: a whole
 * transaction (`Db.transaction` on PostgreSQL), or a statement that commits alone and may lose a deadlock
 * against a transaction that takes the same row locks in another order (the accept).
 */
export async function retryingConflicts<T>(fn: () => Promise<T>, tries = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const state = sqlState(err);
      if (state === undefined || !RETRYABLE_SQLSTATES.has(state) || attempt >= tries) throw err;
    }
  }
}

/**
 * The `synchronous_commit` of a claim or record statement's own transaction. Off by default: a claim or
 * a result lost to a PostgreSQL crash (its last ~0.6 s) means the delivery is sent again with the same
 * webhook-id, which at-least-once allows; an accepted event is never committed this way.
 */
export function synchronousCommit(sync: boolean | undefined): "on" | "off" {
  return sync === true ? "on" : "off";
}
