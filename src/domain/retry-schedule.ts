/**
 * Retry back-off: the schedule of delays between attempts, `Retry-After` parsing, and the delay
 * before the next attempt (with jitter). Pure: the clock and the random source are parameters.
 */

/** Delays (ms) before attempts 2..8; the attempt count is its length + 1. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = Object.freeze([
  5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000,
]);

/** The environment variable that overrides {@link DEFAULT_RETRY_SCHEDULE_MS}. */
export const RETRY_SCHEDULE_ENV = "HERALD_RETRY_SCHEDULE_MS";
/** A schedule lists at most this many delays (so at most 21 attempts). */
export const MAX_RETRY_SCHEDULE_ENTRIES = 20;
/** No single delay may exceed 7 days. */
export const MAX_RETRY_DELAY_MS = 7 * 24 * 60 * 60 * 1000;
/** A `Retry-After` shorter than this is ignored (the jittered schedule applies instead). */
export const RETRY_AFTER_MIN_MS = 1_000;
/** Jitter multiplies the scheduled delay by a factor in `[JITTER_MIN, JITTER_MAX)`. */
export const JITTER_MIN = 0.8;
export const JITTER_MAX = 1.2;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Parses `HERALD_RETRY_SCHEDULE_MS`: comma-separated positive integers (milliseconds), 1 to 20
 * entries, each at most 7 days (604800000). Blanks around entries are allowed; empty entries,
 * signs, decimals and exponents are not. Error messages name the variable and the bad entry or bound.
 */
export function parseRetrySchedule(text: string): ParseResult<number[]> {
  const trimmed = text.trim();
  if (trimmed === "") {
    return {
      ok: false,
      message: `${RETRY_SCHEDULE_ENV} must list 1 to ${MAX_RETRY_SCHEDULE_ENTRIES} delays in milliseconds, separated by commas; got an empty value`,
    };
  }
  const entries = trimmed.split(",").map((entry) => entry.trim());
  if (entries.length > MAX_RETRY_SCHEDULE_ENTRIES) {
    return {
      ok: false,
      message: `${RETRY_SCHEDULE_ENV} must list at most ${MAX_RETRY_SCHEDULE_ENTRIES} delays; got ${entries.length}`,
    };
  }
  const value: number[] = [];
  for (const [index, entry] of entries.entries()) {
    const position = `entry ${index + 1}`;
    if (entry === "") {
      return { ok: false, message: `${RETRY_SCHEDULE_ENV}: ${position} is empty` };
    }
    if (!/^[0-9]+$/.test(entry)) {
      return {
        ok: false,
        message: `${RETRY_SCHEDULE_ENV}: ${position} "${entry}" is not a positive integer number of milliseconds`,
      };
    }
    const ms = Number(entry);
    if (ms < 1) {
      return { ok: false, message: `${RETRY_SCHEDULE_ENV}: ${position} "${entry}" must be at least 1 ms` };
    }
    if (ms > MAX_RETRY_DELAY_MS) {
      return {
        ok: false,
        message: `${RETRY_SCHEDULE_ENV}: ${position} "${entry}" exceeds the maximum of ${MAX_RETRY_DELAY_MS} ms (7 days)`,
      };
    }
    value.push(ms);
  }
  return { ok: true, value };
}

/** The number of attempts a schedule allows: one first attempt plus one retry per delay. */
export function maxAttempts(schedule: readonly number[]): number {
  return schedule.length + 1;
}

const DAY_NAMES = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY_NAMES = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
// IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^${DAY_NAMES}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, "i");
// obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE = new RegExp(`^${LONG_DAY_NAMES}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, "i");
// obsolete asctime: Sun Nov  6 08:49:37 1994
const ASCTIME_DATE = new RegExp(`^${DAY_NAMES} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`, "i");

function utcMs(year: number, month: string, day: number, h: number, m: number, s: number): number | null {
  const monthIndex = MONTHS.indexOf(month.toLowerCase());
  if (monthIndex < 0 || h > 23 || m > 59 || s > 60) return null;
  const date = new Date(Date.UTC(year, monthIndex, day, h, m, Math.min(s, 59)));
  // Date.UTC rolls over (Feb 30 → Mar 2); a rolled-over date is not a real date.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== monthIndex || date.getUTCDate() !== day) {
    return null;
  }
  return date.getTime();
}

/** Parses an HTTP-date in any of the three formats of RFC 9110 §5.6.7; anything else → null. */
export function parseHttpDate(value: string, nowMs: number): number | null {
  let match = IMF_FIXDATE.exec(value);
  if (match) {
    const [, day, month, year, h, m, s] = match;
    return utcMs(Number(year), month!, Number(day), Number(h), Number(m), Number(s));
  }
  match = RFC850_DATE.exec(value);
  if (match) {
    const [, day, month, yy, h, m, s] = match;
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
    const currentYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(currentYear / 100) * 100 + Number(yy);
    if (year > currentYear + 50) year -= 100;
    return utcMs(year, month!, Number(day), Number(h), Number(m), Number(s));
  }
  match = ASCTIME_DATE.exec(value);
  if (match) {
    const [, month, day, h, m, s, year] = match;
    return utcMs(Number(year), month!, Number(day!.trim()), Number(h), Number(m), Number(s));
  }
  return null;
}

/**
 * Parses a `Retry-After` header into milliseconds from `nowMs`.
 *
 * - delta-seconds (`"120"`) → `120000`;
 * - an HTTP-date (IMF-fixdate, RFC 850 or asctime) → the time left until it, or `0` when it is past;
 * - absent, empty, negative, fractional or otherwise malformed → `null`.
 */
export function parseRetryAfter(headerValue: string | undefined, nowMs: number): number | null {
  if (headerValue === undefined) return null;
  const value = headerValue.trim();
  if (value === "") return null;
  if (/^[0-9]+$/.test(value)) {
    const ms = Number(value) * 1000;
    return Number.isFinite(ms) ? ms : null;
  }
  const at = parseHttpDate(value, nowMs);
  if (at === null) return null;
  return Math.max(0, at - nowMs);
}

export interface RetryDelayInput {
  /** The attempt that just failed (1-based); the delay is the wait before attempt `failedAttempt + 1`. */
  failedAttempt: number;
  /** Delays before attempts 2..n, e.g. {@link DEFAULT_RETRY_SCHEDULE_MS}. */
  schedule: readonly number[];
  /** The consumer's `Retry-After`, already parsed with {@link parseRetryAfter}; null/undefined when absent. */
  retryAfterMs?: number | null | undefined;
  /** A random source in `[0, 1)` (e.g. `Math.random`); called at most once. */
  random: () => number;
}

/**
 * The delay (ms) before attempt `failedAttempt + 1`.
 *
 * Rule:
 * 1. The base delay is `schedule[failedAttempt - 1]`.
 * 2. A `Retry-After` of at least {@link RETRY_AFTER_MIN_MS} (1 s) is honoured as given, without jitter,
 *    clamped to the longest delay of the schedule (`max(schedule)`): a consumer can ask us to wait
 *    longer or shorter than the schedule, but never longer than the schedule's own longest wait.
 * 3. Otherwise (no `Retry-After`, or one under 1 s) the base is jittered: multiplied by a factor in
 *    `[0.8, 1.2)` drawn from `random()`, rounded to a whole millisecond that still lies in
 *    `[0.8 × base, 1.2 × base)`.
 *
 * Deterministic: the same inputs (and the same `random()` value) always give the same delay.
 *
 * @throws RangeError when `failedAttempt` is not in `1..schedule.length` (there is no next attempt:
 *   the failure goes to the DLQ, see `outcomeOf`), when the schedule entry is not a positive integer,
 *   or when `random()` returns a value outside `[0, 1)`.
 */
export function retryDelayMs({ failedAttempt, schedule, retryAfterMs, random }: RetryDelayInput): number {
  if (!Number.isInteger(failedAttempt) || failedAttempt < 1 || failedAttempt > schedule.length) {
    throw new RangeError(
      `failedAttempt must be an integer between 1 and ${schedule.length} (the schedule's length); got ${failedAttempt}`,
    );
  }
  const base = schedule[failedAttempt - 1]!;
  if (!Number.isSafeInteger(base) || base < 1) {
    throw new RangeError(`schedule entry ${failedAttempt} must be a positive integer (ms); got ${base}`);
  }
  if (retryAfterMs !== null && retryAfterMs !== undefined && retryAfterMs >= RETRY_AFTER_MIN_MS) {
    return Math.min(retryAfterMs, Math.max(...schedule));
  }
  const r = random();
  if (!(r >= 0 && r < 1)) {
    throw new RangeError(`random() must return a number in [0, 1); got ${r}`);
  }
  // Integer bounds computed without 0.8 / 1.2 floating error: low = ⌈4b/5⌉, high = ⌈6b/5⌉ (exclusive).
  const low = Math.ceil((base * 4) / 5);
  const high = Math.ceil((base * 6) / 5);
  return low + Math.floor(r * (high - low));
}
