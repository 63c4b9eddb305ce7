import pg from "pg";
import {
  type Db,
  type Queryable,
  type QueryOptions,
  type QueryResult,
  RETRYABLE_SQLSTATES,
  sqlState,
} from "./db.ts";

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

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(
      sql: string,
      params: readonly unknown[] = [],
      opts?: QueryOptions,
    ): Promise<QueryResult<R>> {
      const values = params as unknown[];
      const res = opts?.name
        ? await client.query({ name: opts.name, text: sql, values })
        : await client.query(sql, values);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
    },
  };
}

export async function createPgDb(opts: PgDbOptions): Promise<Db> {
  if (opts.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.schema)) {
    throw new Error(`invalid schema name "${opts.schema}"`);
  }
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? "herald",
    types: { getTypeParser: typeParser } as pg.CustomTypesConfig,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  if (opts.schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`);
  const q = wrap(pool);
  return {
    kind: "postgres",
    query: q.query,
    async exec(sql: string) {
      await pool.query(sql);
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const out = await fn(wrap(client));
          await client.query("COMMIT");
          return out;
        } catch (err) {
          await client.query("ROLLBACK").catch(() => {});
          const state = sqlState(err);
          if (state !== undefined && RETRYABLE_SQLSTATES.has(state) && attempt < 5) continue;
          throw err;
        } finally {
          client.release();
        }
      }
    },
    async close() {
      await pool.end();
    },
  };
}
