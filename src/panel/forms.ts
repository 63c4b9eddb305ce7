import { HeraldError } from "../errors.ts";

/** A submitted form: its string fields (anything else a client sent is ignored). */
export type Form = Record<string, string>;

/** Parses an `application/x-www-form-urlencoded` body; the first value of a repeated name wins. */
export function parseForm(body: string): Form {
  const out: Form = {};
  for (const [k, v] of new URLSearchParams(body)) if (!(k in out)) out[k] = v;
  return out;
}

/** The string fields of whatever body parser ran (form or JSON). */
export function formOf(body: unknown): Form {
  const out: Form = {};
  if (body && typeof body === "object" && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
  }
  return out;
}

/** A trimmed field, or undefined when it is absent or blank. */
export function field(form: Form, name: string): string | undefined {
  const v = form[name]?.trim();
  return v ? v : undefined;
}

/** A whole number from a field, or undefined when blank; anything else is a 400 naming the field. */
export function intField(form: Form, name: string, label = name): number | undefined {
  const v = field(form, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new HeraldError("invalid_field", `${label} must be a whole number; got "${clip(v)}"`);
  }
  return Number(v);
}

/** A positive whole number from a query string or path, or undefined when absent; else a 400. */
export function positiveInt(v: string | undefined, label: string): number | undefined {
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < 1) {
    throw new HeraldError("invalid_field", `${label} must be a positive whole number; got "${clip(v)}"`);
  }
  return Number(v);
}

const LOCAL_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/;

/**
 * A date-time field as ISO 8601. A value without a zone (what `<input type="datetime-local">` sends)
 * is read as UTC; a full ISO 8601 value with a zone is accepted as it is.
 */
export function utcField(form: Form, name: string, label = name): string | undefined {
  const v = field(form, name);
  if (v === undefined) return undefined;
  const withZone = LOCAL_DATETIME.test(v) ? `${v}Z` : v;
  const d = new Date(withZone);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-/.test(v)) {
    throw new HeraldError(
      "invalid_field",
      `${label} must be a date and time in UTC such as 2025-01-31T14:00; got "${clip(v)}"`,
    );
  }
  return d.toISOString();
}

/** IDs typed one per line, or separated by commas on one line; blanks dropped. */
export function idList(text: string | undefined): string[] {
  if (!text) return [];
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const parts = lines.filter((l) => l !== "").length === 1 ? lines.join("").split(",") : lines;
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/** Event IDs from a text field (commas, spaces or lines between them); a bad one is a 400 naming it. */
export function eventIdList(text: string | undefined, label: string): number[] | undefined {
  if (!text?.trim()) return undefined;
  const parts = text.split(/[\s,]+/).filter((p) => p !== "");
  return parts.map((p) => {
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(Number(p)) || Number(p) < 1) {
      throw new HeraldError(
        "invalid_field",
        `${label}: "${clip(p)}" is not an event ID (a positive whole number)`,
      );
    }
    return Number(p);
  });
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/**
 * A path to send the browser back to after an action: only a path of this panel (never another site,
 * never a protocol-relative `//host`), else `fallback`.
 */
export function safeBack(v: string | undefined, fallback: string): string {
  if (!v || v.length > 500) return fallback;
  if (!/^\/webhooks(?:[/?#]|$)/.test(v)) return fallback;
  if (/[\\\s]|\/\//.test(v)) return fallback;
  return v;
}
