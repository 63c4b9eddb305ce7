/**
 * The life cycle of one delivery row (one attempt to POST one event to one subscription).
 *
 * ```
 *            ┌──────────── lease expired / released before send ────────────┐
 *            ▼                                                              │
 *        pending ──────────────────────────────► in_flight ──► delivered    │
 *            │                                       │ │ └────► failed      │
 *            │ operator drop                         │ └──────► dlq         │
 *            ▼                                       └──────────────────────┘
 *           dlq
 * ```
 *
 * `delivered`, `failed` and `dlq` are terminal for the row: a retry is a *new* row with
 * `attempt_number + 1`, and a replay is a new row with attempt 1.
 */

export const DELIVERY_STATUSES = ["pending", "in_flight", "delivered", "failed", "dlq"] as const;

export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

const TRANSITIONS: Readonly<Record<DeliveryStatus, readonly DeliveryStatus[]>> = {
  pending: ["in_flight", "dlq"],
  in_flight: ["delivered", "failed", "dlq", "pending"],
  delivered: [],
  failed: [],
  dlq: [],
};

/** Every allowed `[from, to]` pair, for documentation and exhaustive tests. */
export const ALLOWED_TRANSITIONS: ReadonlyArray<readonly [DeliveryStatus, DeliveryStatus]> =
  DELIVERY_STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => [from, to] as const));

export function isDeliveryStatus(value: unknown): value is DeliveryStatus {
  return typeof value === "string" && (DELIVERY_STATUSES as readonly string[]).includes(value);
}

/** True when a row in status `from` may move to status `to`. A status never "moves" to itself. */
export function canTransition(from: DeliveryStatus, to: DeliveryStatus): boolean {
  return TRANSITIONS[from]?.includes(to) ?? false;
}

/** Thrown by {@link assertTransition}; `code` is always `INVALID_TRANSITION`. */
export class InvalidTransitionError extends Error {
  readonly code = "INVALID_TRANSITION" as const;
  readonly from: DeliveryStatus;
  readonly to: DeliveryStatus;

  constructor(from: DeliveryStatus, to: DeliveryStatus) {
    super(`invalid delivery transition ${from} → ${to}`);
    this.name = "InvalidTransitionError";
    this.from = from;
    this.to = to;
  }
}

/** Throws an {@link InvalidTransitionError} (code `INVALID_TRANSITION`) unless `from → to` is allowed. */
export function assertTransition(from: DeliveryStatus, to: DeliveryStatus): void {
  if (!canTransition(from, to)) throw new InvalidTransitionError(from, to);
}

/** A row in a terminal status never changes again (`delivered`, `failed`, `dlq`). */
export function isTerminal(status: DeliveryStatus): boolean {
  return status === "delivered" || status === "failed" || status === "dlq";
}

/** `pending` and `in_flight` rows count toward the subscription's pending ceiling. */
export function isActive(status: DeliveryStatus): boolean {
  return status === "pending" || status === "in_flight";
}

export type AttemptOutcome = { status: "delivered" } | { status: "failed"; retry: true } | { status: "dlq" };

/**
 * What an in-flight attempt becomes once its POST has finished.
 *
 * - success → `delivered`;
 * - failure of an attempt before the last → `failed` and a retry (attempt + 1) must be scheduled;
 * - failure of the last attempt (`attemptNumber >= maxAttempts`) → `dlq` (not `failed`). An attempt
 *   number beyond `maxAttempts` (the schedule was shortened while the row waited) also goes to `dlq`.
 *
 * @throws RangeError when `attemptNumber` or `maxAttempts` is not a positive integer.
 */
export function outcomeOf(attemptNumber: number, maxAttempts: number, success: boolean): AttemptOutcome {
  if (!Number.isInteger(attemptNumber) || attemptNumber < 1) {
    throw new RangeError(`attemptNumber must be a positive integer; got ${attemptNumber}`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer; got ${maxAttempts}`);
  }
  if (success) return { status: "delivered" };
  if (attemptNumber >= maxAttempts) return { status: "dlq" };
  return { status: "failed", retry: true };
}
