import pg from "pg";
import {
  type Db,
  type DedicatedSession,
  type Queryable,
  type QueryOptions,
  type QueryResult,
  retryingConflicts,
} from "./db.ts";
import { redactDbError, statementLabel } from "./db-error.ts";

const INT8_OID = 20;
const NUMERIC_OID = 1700;

export interface PgDbOptions {
  connectionString: string;
  /** Schema to create and use (tests give each file its own); default the connection's search_path. */
  schema?: string;
  max?: number;
  applicationName?: string;
}

/** Bigints as JS numbers: event and delivery ids stay far below 2^53. */
function typeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === INT8_OID) return (v: string) => Number(v);
  if (oid === NUMERIC_OID) return (v: string) => Number(v);
  return pg.types.getTypeParser(oid, format as "text");
}

/**
 * Runs statements on `client`; a named statement outside a transaction goes to `planned` instead when
 * given (the pool whose sessions keep generic plans, see createPgDb).
 */
function wrap(client: pg.Pool | pg.PoolClient | pg.Client, planned?: () => pg.Pool): Queryable {
  return {
    async query<R>(
      sql: string,
      params: readonly unknown[] = [],
      opts?: QueryOptions,
    ): Promise<QueryResult<R>> {
      const values = params as unknown[];
      try {
        const res = opts?.name
          ? await (planned?.() ?? client).query({ name: opts.name, text: sql, values })
          : await client.query(sql, values);
        return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
      } catch (err) {
        // A DatabaseError's detail can quote the failing row; see db-error.ts.
        throw redactDbError(err, statementLabel(sql, opts?.name));
      }
    },
  };
}

export async function createPgDb(opts: PgDbOptions): Promise<Db> {
  if (opts.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.schema)) {
    throw new Error(`invalid schema name "${opts.schema}"`);
  }
  const newPool = (setup?: string) => {
    const p = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.max ?? 10,
      application_name: opts.applicationName ?? "herald",
      types: { getTypeParser: typeParser } as pg.CustomTypesConfig,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    p.on("error", () => {});
    // Queued on a new session before anything else it runs (pg hands the client out after this event).
    if (setup) p.on("connect", (client) => void client.query(setup).catch(() => {}));
    return p;
  };
  const pool = newPool();
  // Named statements (claim, record, ...: constant text run thousands of times) get sessions of their own
  // that plan each once and keep the plan. PostgreSQL's own choice re-planned the claim on every call (its
  // generic plan counts 100 elements for an array parameter, so it always looked dearer than a custom
  // one): 0.4-1 ms of PostgreSQL's CPU a claim. The setting is per session and would also turn every
  // one-off statement generic, so it lives on a pool of its own (docs/decisions.md). Sessions open on
  // first use and close after 10 s idle.
  let plannedPool: pg.Pool | null = null;
  const planned = () => {
    plannedPool ??= newPool("SET plan_cache_mode = force_generic_plan");
    return plannedPool;
  };
  if (opts.schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
  const dedicated = async (): Promise<DedicatedSession> => {
    const client = new pg.Client({
      connectionString: opts.connectionString,
      application_name: `${opts.applicationName ?? "herald"}-session`,
      types: { getTypeParser: typeParser } as pg.CustomTypesConfig,
      ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    });
    let closing = false;
    const lost = new Promise<void>((resolve) => {
      client.on("error", () => resolve());
      client.on("end", () => {
        if (!closing) resolve();
      });
    });
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return {
      ...wrap(client),
      lost,
      async close() {
        closing = true;
        await client.end().catch(() => {});
      },
    };
  };
  const q = wrap(pool, planned);
  return {
    kind: "postgres",
    query: q.query,
    dedicated,
    async exec(sql: string) {
      try {
        await pool.query(sql);
      } catch (err) {
        throw redactDbError(err, statementLabel(sql));
      }
    },
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return retryingConflicts(async () => {
        const client = await pool.connect();
        // A checked-out client has no pool listener: without this one, a server that goes away mid-transaction
        // (a PostgreSQL crash or restart) emits an unhandled 'error' and ends the process. The statement in
        // progress, or the next one, fails instead; the broken client leaves the pool.
        let broken: Error | null = null;
        const onError = (err: Error) => {
          broken = err;
        };
        client.on("error", onError);
        try {
          await client.query("BEGIN");
          const out = await fn(wrap(client));
          await client.query("COMMIT");
          return out;
        } catch (err) {
          await client.query("ROLLBACK").catch(() => {});
          throw redactDbError(err, "transaction");
        } finally {
          client.removeListener("error", onError);
          client.release(broken ?? undefined);
        }
      });
    },
    async close() {
      await Promise.all([pool.end(), plannedPool?.end()]);
    },
  };
}
