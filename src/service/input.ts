import { findJsonProblem, MAX_PAYLOAD_DEPTH, textProblem, timestampProblem } from "../domain/input-rules.ts";
import { HeraldError } from "../errors.ts";

/**
 * The service's own checks of what callers hand it (the API, the panel, and anything else in the
 * process), so a value PostgreSQL or JSON.stringify would choke on is a 400 here, never a 500 later.
 */

/** A client's date-time as a Date inside the accepted range, or undefined when absent; else a 400. */
export function timestamp(field: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  const problem = timestampProblem(d);
  if (problem) throw new HeraldError("invalid_field", `${field} ${problem}; got ${JSON.stringify(clip(v))}`);
  return d;
}

/** Refuses a text field holding NUL or a lone surrogate. */
export function checkText(field: string, v: string | null | undefined): void {
  if (typeof v !== "string") return;
  const problem = textProblem(v);
  if (problem) throw new HeraldError("invalid_field", `${field} ${problem}`);
}

/**
 * Checks a payload (every string and key storable, at most MAX_PAYLOAD_DEPTH levels) before it is
 * serialised, and answers its size in bytes as JSON; over `maxBytes` is a 413.
 */
export function checkPayload(field: string, payload: unknown, maxBytes: number): number {
  const found = findJsonProblem(payload, field, MAX_PAYLOAD_DEPTH);
  if (found) {
    const why = found.problem.includes("NUL") ? ": PostgreSQL's jsonb cannot store it" : "";
    throw new HeraldError("invalid_field", `${clip(found.path, 200)} ${found.problem}${why}`);
  }
  const size = Buffer.byteLength(JSON.stringify(payload ?? null));
  if (size > maxBytes) {
    throw new HeraldError(
      "payload_too_large",
      `${field} is ${size} bytes; the largest accepted is ${maxBytes} bytes (HERALD_MAX_BODY_BYTES)`,
    );
  }
  return size;
}

function clip(s: string, max = 40): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
