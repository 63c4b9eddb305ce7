/**
 * Per-subscription ceilings: `pending_ceiling` (pending + in_flight deliveries) and `dlq_ceiling`
 * (dlq deliveries). Reaching one pauses the subscription.
 */

/** The lowest ceiling a subscription may have. */
export const CEILING_MIN = 100;
/** The environment variable holding the deployment's hard cap on ceilings. */
export const HARD_CAP_ENV = "DISPATCHER_MAX_PENDING_HARD_CAP";

export type CeilingField = "pending_ceiling" | "dlq_ceiling";

export type CeilingValidation = { ok: true; value: number } | { ok: false; message: string };

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

/**
 * Validates a ceiling given by an operator (API body, CLI flag): an integer between
 * {@link CEILING_MIN} and `hardCap` inclusive. Strings, fractions, NaN and infinities are refused.
 * The message names the field and the bound, e.g.
 * `pending_ceiling must be between 100 and 50000 (DISPATCHER_MAX_PENDING_HARD_CAP); got 60000`.
 *
 * @throws RangeError when `hardCap` itself is not an integer ≥ {@link CEILING_MIN} (a configuration
 *   error that the environment validation must catch first).
 */
export function validateCeiling(field: CeilingField, value: unknown, hardCap: number): CeilingValidation {
  if (!Number.isSafeInteger(hardCap) || hardCap < CEILING_MIN) {
    throw new RangeError(`${HARD_CAP_ENV} must be an integer of at least ${CEILING_MIN}; got ${hardCap}`);
  }
  const bounds = `between ${CEILING_MIN} and ${hardCap} (${HARD_CAP_ENV})`;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return { ok: false, message: `${field} must be an integer ${bounds}; got ${describe(value)}` };
  }
  if (value < CEILING_MIN || value > hardCap) {
    return { ok: false, message: `${field} must be ${bounds}; got ${value}` };
  }
  return { ok: true, value };
}

/**
 * True when a count, after the insert (or move to dlq) that produced it, has reached the ceiling:
 * reaching it pauses the subscription (`countAfter >= ceiling`).
 */
export function crossesCeiling(countAfter: number, ceiling: number): boolean {
  return countAfter >= ceiling;
}
