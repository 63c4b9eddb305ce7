/**
 * What a database error may carry out of src/store. Both drivers attach more than a log can take: PGlite
 * sets the statement's parameters on the error it throws (`params`: an event batch's payloads, a new
 * subscription's secret), and PostgreSQL's `detail` can quote a whole failing row ("Failing row contains
 * (…)"). Anything that logs an error (`log.error({ err })`) writes every such property, so every statement
 * error leaves the store as a StoreError instead: SQLSTATE, the schema object named, a truncated message
 * and which statement failed (its name, or the start of its text). Never a parameter or a row.
 */

/** Longest message kept (PostgreSQL quotes a rejected input value in some messages). */
const MESSAGE_LIMIT = 300;
/** How much of a statement's text names it when it has no name. */
const STATEMENT_LIMIT = 80;
/** Stack frames kept. */
const FRAME_LIMIT = 12;

export class StoreError extends Error {
  /** SQLSTATE (e.g. 23505), or the system error code of a connection failure. */
  readonly code: string | undefined;
  readonly severity: string | undefined;
  readonly constraint: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly routine: string | undefined;
  /** The statement's name, or the first characters of its text. */
  readonly statement: string;

  constructor(source: Record<string, unknown>, statement: string) {
    const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
    super(truncate(oneLine(text(source.message) ?? "database error"), MESSAGE_LIMIT));
    this.name = "StoreError";
    this.code = text(source.code);
    this.severity = text(source.severity);
    this.constraint = text(source.constraint);
    this.table = text(source.table);
    this.column = text(source.column);
    this.routine = text(source.routine);
    this.statement = statement;
    // The driver's frames, under this error's own (bounded) first line: the original first line is the
    // untruncated message.
    const frames = (text(source.stack) ?? "")
      .split("\n")
      .filter((l) => /^\s+at /.test(l))
      .slice(0, FRAME_LIMIT);
    if (frames.length > 0) this.stack = `${this.name}: ${this.message}\n${frames.join("\n")}`;
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}… (${s.length} characters)`;
}

/** How a failed statement is named in a StoreError: its name, or the start of its text on one line. */
export function statementLabel(sql: string, name?: string): string {
  return name ?? truncate(oneLine(sql), STATEMENT_LIMIT);
}

/**
 * A driver's error as a StoreError; anything else (an error thrown by the caller's own code inside a
 * transaction, a StoreError already) unchanged.
 */
export function redactDbError(err: unknown, statement: string): unknown {
  if (err instanceof StoreError || typeof err !== "object" || err === null) return err;
  const e = err as Record<string, unknown>;
  const fromDriver =
    typeof e.severity === "string" ||
    "params" in e ||
    "query" in e ||
    (err.constructor?.name ?? "") === "DatabaseError";
  return fromDriver ? new StoreError(e, statement) : err;
}
