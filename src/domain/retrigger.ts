/**
 * Re-trigger jobs, the pure parts: bounds, the IDs file, what happens to one item (the same rule for the
 * dry run and the real run), and the plan a dry run shows. No I/O here.
 */

export interface Bound {
  min: number;
  max: number;
  default: number;
}

/** Bounds of a job's settings; a value outside them is refused with 422 naming the field and the bound. */
export const RETRIGGER_BOUNDS = {
  batch_size: { min: 1, max: 1000, default: 50 },
  delay_ms: { min: 0, max: 3_600_000, default: 0 },
  chunk_budget_ms: { min: 1000, max: 600_000, default: 30_000 },
} as const satisfies Record<string, Bound>;

export type BoundField = keyof typeof RETRIGGER_BOUNDS;

/** The most items one job may hold (IDs given, or events a window matches). */
export const MAX_JOB_ITEMS = 100_000;
/** The longest ID accepted (an aggregate ID; event IDs are integers). */
export const MAX_ID_LENGTH = 500;

/** A message naming the field and its bounds when `value` is outside them (or not an integer), else null. */
export function boundViolation(field: BoundField, value: number): string | null {
  const b = RETRIGGER_BOUNDS[field];
  if (!Number.isInteger(value) || value < b.min || value > b.max) {
    return `${field} must be an integer between ${b.min} and ${b.max}; got ${value}`;
  }
  return null;
}

export type IdKind = "aggregate" | "event";

export interface ParsedIds {
  /** Distinct IDs in first-seen order (event IDs in canonical decimal form). */
  ids: string[];
  /** Lines that repeated an earlier ID (collapsed). */
  duplicates: number;
  /** Lines that are not a valid ID, with their 1-based line number. */
  errors: Array<{ line: number; message: string }>;
}

const EVENT_ID = /^[0-9]+$/;

/** Canonical form of an event ID given as text ("007" → "7"), or null when it is not a positive integer. */
export function canonicalEventId(raw: string): string | null {
  if (!EVENT_ID.test(raw)) return null;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) return null;
  return String(n);
}

/**
 * Parses an IDs file: one ID per line; surrounding blanks trimmed; blank lines and lines starting with
 * `#` ignored; duplicates collapsed (first occurrence kept). Windows line ends and a byte-order mark are
 * accepted. Event IDs must be positive integers.
 */
export function parseIdsFile(text: string, kind: IdKind): ParsedIds {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const out = collapseIds([]);
  const errors: ParsedIds["errors"] = [];
  let duplicates = 0;
  lines.forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) return;
    let id = line;
    if (kind === "event") {
      const c = canonicalEventId(line);
      if (c === null) {
        errors.push({
          line: i + 1,
          message: `line ${i + 1}: "${clip(line)}" is not an event ID (a positive integer)`,
        });
        return;
      }
      id = c;
    } else if (line.length > MAX_ID_LENGTH) {
      errors.push({
        line: i + 1,
        message: `line ${i + 1}: the ID is longer than ${MAX_ID_LENGTH} characters`,
      });
      return;
    }
    if (!out.add(id)) duplicates += 1;
  });
  return { ids: out.ids, duplicates, errors };
}

/** An insertion-ordered set of IDs; `add` answers false for a repeat. */
export function collapseIds(initial: readonly string[]): { ids: string[]; add(id: string): boolean } {
  const seen = new Set<string>();
  const ids: string[] = [];
  const add = (id: string) => {
    if (seen.has(id)) return false;
    seen.add(id);
    ids.push(id);
    return true;
  };
  for (const id of initial) add(id);
  return { ids, add };
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

export type ItemOutcome = "pending" | "sent" | "skipped" | "failed";
export type FailReason = "not_found" | "other_tenant" | "other_event_type" | "no_matching_subscription";
export type SkipReason = "already_done_by_job" | "delivered_since";

/** What the requested ID resolved to when the job was made. */
export type Resolution =
  | { kind: "found"; event_id: number; aggregate_id: string | null }
  | { kind: "not_found"; detail: string }
  | { kind: "other_tenant"; detail: string }
  | { kind: "other_event_type"; detail: string };

export interface ItemFacts {
  resolution: Resolution;
  /** Live subscriptions that would receive the re-emitted event now (the job's one, or every matching one). */
  targets: readonly string[];
  /** The job's `skip_delivered_after`, or null. */
  skipDeliveredAfter: Date | null;
  /** Of the targets: those that had an event of this type for this aggregate delivered since then, and when. */
  deliveredSince: ReadonlyMap<string, Date>;
  /** An event this job already re-emitted from the same source, if any. */
  doneByJobAs: number | null;
}

export type Decision =
  | { kind: "trigger"; subscriptions: string[]; skippedSubscriptions: string[]; detail: string | null }
  | { kind: "skip"; reason: SkipReason; detail: string }
  | { kind: "fail"; reason: FailReason; detail: string };

/**
 * What to do with one item. In order: a requested ID that did not resolve fails (not found, another
 * tenant's, another event type); no live matching subscription fails; a source this job already
 * re-emitted is skipped; with `skip_delivered_after`, the subscriptions that already had an event of this
 * type for this aggregate delivered since then are left out, and the item is skipped if none is left.
 * Otherwise the item is re-emitted to the remaining subscriptions.
 */
export function classifyItem(f: ItemFacts): Decision {
  const r = f.resolution;
  if (r.kind !== "found") return { kind: "fail", reason: r.kind, detail: r.detail };
  if (f.targets.length === 0) {
    return {
      kind: "fail",
      reason: "no_matching_subscription",
      detail: "no live subscription of the tenant receives this event type",
    };
  }
  if (f.doneByJobAs !== null) {
    return {
      kind: "skip",
      reason: "already_done_by_job",
      detail: `already re-emitted by this job as event ${f.doneByJobAs}`,
    };
  }
  const targets = [...f.targets].sort();
  if (f.skipDeliveredAfter === null)
    return { kind: "trigger", subscriptions: targets, skippedSubscriptions: [], detail: null };
  const done = targets.filter((s) => f.deliveredSince.has(s));
  const left = targets.filter((s) => !f.deliveredSince.has(s));
  const since = f.skipDeliveredAfter.toISOString();
  const describe = (subs: string[]) =>
    subs.map((s) => `${s} at ${f.deliveredSince.get(s)!.toISOString()}`).join(", ");
  if (left.length === 0) {
    return {
      kind: "skip",
      reason: "delivered_since",
      detail: `delivered since ${since}: ${describe(done)}`,
    };
  }
  return {
    kind: "trigger",
    subscriptions: left,
    skippedSubscriptions: done,
    detail: done.length > 0 ? `left out (delivered since ${since}): ${describe(done)}` : null,
  };
}

export type DryRunOutcome = "WOULD_TRIGGER" | "WOULD_SKIP" | "WOULD_FAIL";

export function dryRunOutcome(d: Decision): DryRunOutcome {
  if (d.kind === "trigger") return "WOULD_TRIGGER";
  return d.kind === "skip" ? "WOULD_SKIP" : "WOULD_FAIL";
}

/** The item outcome a decision records. */
export function outcomeOf(d: Decision): Exclude<ItemOutcome, "pending"> {
  if (d.kind === "trigger") return "sent";
  return d.kind === "skip" ? "skipped" : "failed";
}

/**
 * A planning guess of one item's cost (items go in groups of up to 50 per transaction: the events, their
 * deliveries, the outcomes). Measured 0.4-0.5 ms on a busy 2-core machine (bench/HISTORY.md, "Re-trigger
 * jobs"); 1 ms leaves room for a slower store.
 */
export const ESTIMATED_ITEM_MS = 1;

export interface Plan {
  items: number;
  batch_size: number;
  delay_ms: number;
  chunk_budget_ms: number;
  /** Chunks the job will take (a chunk is batch_size items, or fewer when its time budget runs out). */
  chunks: number;
  /** Items per second, counting the delays between chunks. */
  pace_items_per_second: number;
  estimated_duration_ms: number;
}

/**
 * How a job over `items` items will run: chunks of batch_size (fewer items per chunk if the time budget
 * would run out first at `itemMs` per item), delay_ms between chunks.
 */
export function planJob(p: {
  items: number;
  batchSize: number;
  delayMs: number;
  chunkBudgetMs: number;
  itemMs?: number;
}): Plan {
  const itemMs = Math.max(0.001, p.itemMs ?? ESTIMATED_ITEM_MS);
  const perChunk = Math.max(1, Math.min(p.batchSize, Math.floor(p.chunkBudgetMs / itemMs)));
  const chunks = p.items === 0 ? 0 : Math.ceil(p.items / perChunk);
  const duration = Math.round(p.items * itemMs + Math.max(0, chunks - 1) * p.delayMs);
  const pace = duration === 0 ? 0 : Math.round((p.items / duration) * 1000 * 10) / 10;
  return {
    items: p.items,
    batch_size: p.batchSize,
    delay_ms: p.delayMs,
    chunk_budget_ms: p.chunkBudgetMs,
    chunks,
    pace_items_per_second: pace,
    estimated_duration_ms: duration,
  };
}

export type JobStatus = "pending" | "running" | "completed" | "cancelled" | "failed";

/** Statuses a runner works on. */
export const RUNNABLE: readonly JobStatus[] = ["pending", "running"];

/** Whether cancel applies (a stopped job answers 409). */
export function canCancel(s: JobStatus): boolean {
  return s === "pending" || s === "running" || s === "failed";
}

/** Whether resume applies: completed and cancelled jobs are final. */
export function canResume(s: JobStatus): boolean {
  return s === "pending" || s === "running" || s === "failed";
}

/** Consecutive failing chunks after which a job becomes `failed` (resume runs it again). */
export const MAX_CHUNK_ERRORS = 5;

/** Back-off before a chunk that failed is tried again. */
export function chunkRetryDelayMs(errors: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.max(0, Math.min(errors - 1, 6)));
}
