/**
 * Numbers in JSON text that a JavaScript number would change: JSON.parse turns 9007199254740993 into
 * …992, 1e400 into Infinity (then `null` when written back) and 1e-400 into 0. Herald refuses them
 * rather than store another value than the client sent (docs/api.md, "Large numbers").
 */

/** A number that would be changed, and where it is (a dotted path of keys and indexes). */
export interface InexactNumber {
  path: string;
  literal: string;
}

/**
 * Text without a run of 16 digits or a 3-digit exponent holds no such number: an integer beyond 2^53 has
 * at least 16 digits, and overflow or underflow needs an exponent of 3 digits or a long run of digits.
 */
const MAYBE = /[0-9]{16}|[eE][+-]?[0-9]{3}/;
const NUMBER = /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const NONZERO_MANTISSA = /^-?0*\.?0*[1-9]/;

/** True when Number(literal) is not the value the literal writes (beyond the usual rounding of a fraction). */
function changes(literal: string, fraction: boolean, exponent: boolean): boolean {
  const v = Number(literal);
  if (!Number.isFinite(v)) return true;
  if (!fraction && !exponent) return !Number.isSafeInteger(v);
  const mantissa = exponent ? literal.slice(0, literal.search(/[eE]/)) : literal;
  return v === 0 && NONZERO_MANTISSA.test(mantissa);
}

interface Frame {
  object: boolean;
  key: string;
  index: number;
}

/**
 * The first number in valid JSON `text` that JavaScript cannot hold: an integer literal beyond
 * ±(2^53 − 1), a number that overflows to ±Infinity, or a non-zero number that underflows to 0. Other
 * fractions are IEEE 754 doubles, as in every JavaScript client. One pass, no recursion; strings skipped.
 */
export function findInexactNumber(text: string): InexactNumber | null {
  if (!MAYBE.test(text)) return null;
  const stack: Frame[] = [];
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ object: c === 0x7b, key: "", index: 0 });
      expectKey = c === 0x7b;
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.object) expectKey = true;
      else if (top) top.index++;
      i++;
    } else if (c === 0x3a /* : */) {
      expectKey = false;
      i++;
    } else if (c === 0x22 /* " */) {
      let end = i + 1;
      for (;;) {
        end = text.indexOf('"', end);
        if (end < 0) return null; // not valid JSON: the parser has refused it already
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
        end++;
      }
      const top = stack.at(-1);
      if (expectKey && top?.object) top.key = JSON.parse(text.slice(i, end + 1)) as string;
      i = end + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) return null;
      if (changes(m[0], m[1] !== undefined, m[2] !== undefined)) {
        return { path: stack.map((f) => (f.object ? f.key : String(f.index))).join("."), literal: m[0] };
      }
      i += m[0].length;
    } else {
      i++; // blanks and the letters of true, false, null
    }
  }
  return null;
}
