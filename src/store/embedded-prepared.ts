import type { PGlite, protocol as PgliteProtocol } from "@electric-sql/pglite";
import type { QueryResult } from "./db.ts";

type Serialize = typeof PgliteProtocol.serialize;
type Message = { name: string };

interface Prepared {
  paramTypes: number[];
  fields: Array<{ name: string; dataTypeID: number }>;
}

/**
 * Named statements on the embedded store (the claim, the record, the look-ups for work): prepared once in
 * PGlite's one session and run on one generic plan, as on PostgreSQL (src/store/pg-db.ts). PGlite's own
 * `query()` parses, plans and describes a statement on every call, in six calls into its WASM; a claim and
 * the record of its 27 rows took 5.8–6.8 ms that way and 2.4–2.8 ms prepared (bench/HISTORY.md, fifth
 * round). The session's `plan_cache_mode` is set to `force_generic_plan` around the execution only, in the
 * same call, so that every other statement keeps plans made for its parameters; a failed statement is
 * skipped to the Sync, after which the setting is put back all the same.
 *
 * Runs under PGlite's own locks, like `query()`: never inside another caller's transaction.
 */
export function preparedStatements(
  pglite: PGlite,
  serialize: Serialize,
): <R>(name: string, sql: string, params: readonly unknown[]) => Promise<QueryResult<R>> {
  const prepared = new Map<string, Prepared>();
  const concat = (parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const failure = (messages: readonly Message[]): Message | undefined =>
    messages.find((m) => m.name === "error");

  async function prepare(name: string, sql: string): Promise<Prepared> {
    const r = await pglite.execProtocol(
      concat([
        serialize.parse({ name, text: sql }),
        serialize.describe({ type: "S", name }),
        serialize.sync(),
      ]),
      { throwOnError: false },
    );
    const error = failure(r.messages);
    if (error) throw error;
    const params = r.messages.find((m) => m.name === "parameterDescription") as
      | { dataTypeIDs: number[] }
      | undefined;
    const rows = r.messages.find((m) => m.name === "rowDescription") as
      | { fields: Array<{ name: string; dataTypeID: number }> }
      | undefined;
    return {
      paramTypes: params?.dataTypeIDs ?? [],
      fields: (rows?.fields ?? []).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
    };
  }

  return <R>(name: string, sql: string, params: readonly unknown[]) =>
    pglite._runExclusiveTransaction(() =>
      pglite._runExclusiveQuery(async (): Promise<QueryResult<R>> => {
        let statement = prepared.get(name);
        if (!statement) {
          statement = await prepare(name, sql);
          prepared.set(name, statement);
        }
        const { paramTypes, fields } = statement;
        const values = params.map((v, i) => {
          if (v === null || v === undefined) return null;
          const toText = pglite.serializers[paramTypes[i] ?? 0];
          return toText ? toText(v) : String(v);
        });
        const r = await pglite.execProtocol(
          concat([
            serialize.query("SET plan_cache_mode = force_generic_plan"),
            serialize.bind({ statement: name, values }),
            serialize.execute({}),
            serialize.sync(),
            serialize.query("SET plan_cache_mode = auto"),
          ]),
          { throwOnError: false },
        );
        const error = failure(r.messages);
        if (error) throw error;
        const rows: R[] = [];
        for (const m of r.messages) {
          if (m.name !== "dataRow") continue;
          const cells = (m as unknown as { fields: Array<string | null> }).fields;
          const row: Record<string, unknown> = {};
          fields.forEach((f, i) => {
            const text = cells[i] ?? null;
            const parse = pglite.parsers[f.dataTypeID];
            row[f.name] = text === null ? null : parse ? parse(text, f.dataTypeID) : text;
          });
          rows.push(row as R);
        }
        const done = r.messages.find((m) => m.name === "commandComplete") as { text: string } | undefined;
        const touched = Number(done?.text.split(" ").at(-1));
        return { rows, rowCount: rows.length > 0 ? rows.length : Number.isFinite(touched) ? touched : 0 };
      }),
    );
}
