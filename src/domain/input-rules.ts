/**
 * What every value Herald accepts must be, whatever route or form it arrives by (docs/api.md,
 * "Validation rules"). Pure: each check answers a problem sentence or null; callers turn it into a 400.
 */

/**
 * The deepest a payload may nest objects and arrays: `{"a":1}` is 1 level, `[[1]]` 2. Receivers get the
 * payload one level deeper (inside `data`), and common parsers refuse far less than the ~4,500 levels
 * that overflow the stack (Ruby's JSON stops at 100 by default), so 64 leaves room on both sides.
 */
export const MAX_PAYLOAD_DEPTH = 64;

/**
 * Timestamps a client gives (occurred_at, since/until, re-trigger windows) must fall in this range, in UTC.
 * Before 1970 the embedded store reads some years back changed (0001 becomes 2001), and after 9999 the
 * year no longer has four digits; Unix time is never negative inside it.
 */
export const MIN_TIMESTAMP_MS = Date.UTC(1970, 0, 1);
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
export const TIMESTAMP_RANGE = "from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z";

/** The largest id, cursor or count a client may send: a JavaScript number holds every integer up to it. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

const DECIMAL = /^[0-9]{1,16}$/;

/**
 * A path or query integer written as decimal digits only (no sign, exponent, hex, blanks or fraction),
 * at most MAX_ID; null for anything else. Leading zeros are accepted ("007" is 7).
 */
export function parseDecimal(raw: string): number | null {
  if (!DECIMAL.test(raw)) return null;
  const n = Number(raw);
  return n <= MAX_ID ? n : null;
}

// Lone surrogates: a high one not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why a text cannot be stored as it is, or null. PostgreSQL text and jsonb cannot hold U+0000, and a lone
 * UTF-16 surrogate is not Unicode (jsonb refuses it; a text column would silently store U+FFFD).
 */
export function textProblem(s: string): string | null {
  if (s.includes("\u0000")) return "must not contain the NUL character (\\u0000)";
  if (LONE_SURROGATE.test(s)) {
    return "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff): text must be well-formed Unicode";
  }
  return null;
}

/** A problem found inside a JSON value: where (a dotted path from `base`) and what. */
export interface Found {
  path: string;
  problem: string;
}

interface Node {
  value: unknown;
  key: string;
  parent: Node | null;
  depth: number;
}

function pathOf(node: Node): string {
  const parts: string[] = [];
  for (let n: Node | null = node; n; n = n.parent) if (n.key !== "") parts.push(n.key);
  return parts.reverse().join(".");
}

/**
 * The first string or key of a JSON value that breaks `textProblem`, or the first object or array nested
 * deeper than `maxDepth` levels; null when there is none. Iterative, so no input depth can overflow it.
 */
export function findJsonProblem(
  value: unknown,
  base: string,
  maxDepth = Number.POSITIVE_INFINITY,
): Found | null {
  const stack: Node[] = [{ value, key: base, parent: null, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === "string") {
      const p = textProblem(v);
      if (p) return { path: pathOf(node), problem: p };
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    const depth = node.depth + 1;
    if (depth > maxDepth) {
      return { path: base, problem: `must not nest objects and arrays deeper than ${maxDepth} levels` };
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--)
        stack.push({ value: v[i], key: String(i), parent: node, depth });
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      const p = textProblem(k);
      if (p) return { path: pathOf(node), problem: `has a key that ${p}` };
      stack.push({ value: x, key: k, parent: node, depth });
    }
  }
  return null;
}

/** Why a timestamp is refused (outside TIMESTAMP_RANGE or not a date), or null. */
export function timestampProblem(d: Date): string | null {
  const t = d.getTime();
  if (Number.isNaN(t)) return "must be an ISO 8601 date-time with a time zone, such as 2025-01-31T14:00:00Z";
  if (t < MIN_TIMESTAMP_MS || t > MAX_TIMESTAMP_MS) return `must be ${TIMESTAMP_RANGE}`;
  return null;
}
