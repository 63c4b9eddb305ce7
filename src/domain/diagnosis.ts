/**
 * The runbook's diagnosis of a subscription's queue, shown with its head (`GET /v1/subscriptions/:id/head`,
 * `herald head`, the panel). Pure: the caller gathers the counts and the head's attempts.
 *
 * Branches, checked in this order (the first that applies wins):
 *
 * 1. `head_terminated` — the head's latest attempt is already in `dlq` (attempts exhausted or dropped),
 *    yet the subscription is stuck: paused (any reason), or its pending count is at or above
 *    `pending_ceiling`. Nothing more will be tried for the head; the way out is to resume.
 * 2. When the head is still live (its latest attempt is neither `dlq` nor `delivered`) and has a failed
 *    attempt, its latest failure decides:
 *    - `consumer_unreachable` — a transport failure: `dns`, `connection`, `tls`, `timeout`, and also
 *      `ssrf_blocked` (Herald refuses the address the URL resolves to: no event can reach the consumer
 *      until the URL or its DNS is fixed) and `unknown` (no answer could be classified, so no answer
 *      is assumed; a `failed` row without an error kind counts as `unknown`).
 *    - an answer failure — `4xx`, `5xx`, and `response_too_large` (the consumer did answer, with a body
 *      over the limit) — gives `head_rejected` when the consumer is otherwise fine (no failed attempt
 *      of another event in the last hour: `recent_errors_other_events === 0`). When other events fail
 *      too, the consumer is failing as a whole, not rejecting this event: `consumer_unreachable`
 *      (dropping or fixing the head would not help).
 * 3. `dispatcher_behind` — the head has no failure that blocks it, and the backlog is large: the
 *    pending count is at least 10 % of `pending_ceiling`, or the subscription is paused by its
 *    pending ceiling.
 * 4. `healthy` — otherwise (the actions still say how to resume a paused subscription).
 */

import type { DeliveryStatus } from "./delivery-state.ts";
import { ERROR_KINDS, type ErrorKind } from "./error-kind.ts";

export { ERROR_KINDS };

export type ErrorKindLike = ErrorKind;

/** Failures where no usable answer came back from the consumer. */
export const TRANSPORT_ERROR_KINDS: readonly ErrorKindLike[] = [
  "dns",
  "connection",
  "tls",
  "timeout",
  "ssrf_blocked",
  "unknown",
];
/** Failures where the consumer answered, but not with an acceptable 2xx. */
export const ANSWER_ERROR_KINDS: readonly ErrorKindLike[] = ["4xx", "5xx", "response_too_large"];

export type ErrorKindClass = "transport" | "answer";

export function errorKindClass(kind: ErrorKindLike): ErrorKindClass {
  return ANSWER_ERROR_KINDS.includes(kind) ? "answer" : "transport";
}

/** The backlog counts as large from this percentage of `pending_ceiling` on. */
export const BEHIND_PERCENT = 10;

export const DIAGNOSIS_BRANCHES = [
  "consumer_unreachable",
  "head_rejected",
  "dispatcher_behind",
  "head_terminated",
  "healthy",
] as const;

export type DiagnosisBranch = (typeof DIAGNOSIS_BRANCHES)[number];

export interface HeadAttempt {
  attempt_number: number;
  status: DeliveryStatus;
  error_kind: ErrorKindLike | null;
  response_status: number | null;
  attempted_at: Date | null;
}

export interface DiagnosisInput {
  ordering: "ordered" | "unordered";
  status: "active" | "paused";
  pause_reason: "manual" | "pending_ceiling" | "dlq_ceiling" | null;
  /** The count the pending ceiling is compared with (pending + in_flight rows). */
  pending_count: number;
  /** How many of those are in flight right now (informational). */
  in_flight_count: number;
  dlq_count: number;
  pending_ceiling: number;
  /** Failed attempts of this subscription (any event) in the last hour. */
  failed_last_hour: number;
  /** The head of the queue and all its delivery rows (any order), or null for an empty queue. */
  head: null | { event_id: string | number | bigint; attempts: readonly HeadAttempt[] };
  /** Failed attempts of events other than the head in the last hour. */
  recent_errors_other_events: number;
}

export interface Diagnosis {
  branch: DiagnosisBranch;
  summary: string;
  actions: string[];
}

/**
 * Attempts oldest first: by `attempted_at` (rows never attempted — pending, or dropped before sending —
 * are the newest), then by `attempt_number`. Robust to replays, which restart at attempt 1.
 */
export function sortAttempts(attempts: readonly HeadAttempt[]): HeadAttempt[] {
  return [...attempts].sort((a, b) => {
    const ta = a.attempted_at?.getTime() ?? Number.POSITIVE_INFINITY;
    const tb = b.attempted_at?.getTime() ?? Number.POSITIVE_INFINITY;
    if (ta !== tb) return ta < tb ? -1 : 1;
    return a.attempt_number - b.attempt_number;
  });
}

/** The error kind of a failed attempt, or null when the row is not a delivery failure. */
function failureKind(attempt: HeadAttempt): ErrorKindLike | null {
  if (attempt.status === "failed") return attempt.error_kind ?? "unknown";
  // A dlq row with an error kind is a last attempt that failed; without one, an operator drop.
  if (attempt.status === "dlq") return attempt.error_kind;
  return null;
}

const STATE_WORDS: Record<DeliveryStatus, string> = {
  pending: "is pending",
  in_flight: "is in flight",
  delivered: "was delivered",
  failed: "failed",
  dlq: "is in the DLQ",
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function describeFailure(attempt: HeadAttempt, kind: ErrorKindLike): string {
  const code = attempt.response_status === null ? "" : ` (HTTP ${attempt.response_status})`;
  const at = attempt.attempted_at === null ? "" : ` at ${attempt.attempted_at.toISOString()}`;
  return `error_kind ${kind}${code} on attempt ${attempt.attempt_number}${at}`;
}

function queueState(input: DiagnosisInput): string {
  const paused =
    input.status === "paused"
      ? ` The subscription is paused (${input.pause_reason ?? "no reason recorded"}).`
      : "";
  return (
    `${input.pending_count} pending (${input.in_flight_count} in flight) against a pending_ceiling of ` +
    `${input.pending_ceiling}; ${input.dlq_count} in the DLQ; ${plural(input.failed_last_hour, "failed attempt")} ` +
    `in the last hour.${paused}`
  );
}

const TRANSPORT_CHECKS: Record<ErrorKindLike, string> = {
  dns: "Check that the subscription URL's host name resolves (the head failed with a DNS error).",
  connection: "Check that the consumer is up and accepts connections on the URL's host and port.",
  tls: "Check the consumer's TLS certificate (expired, self-signed or issued for another host name).",
  timeout: "Check why the consumer is slow: it did not answer within HERALD_REQUEST_TIMEOUT_MS.",
  ssrf_blocked:
    "The URL resolves to a loopback or private address, which Herald refuses: fix the URL or its DNS record " +
    "(HERALD_ALLOW_PRIVATE_TARGETS=true allows it, for development only).",
  unknown: "Read the attempts' error_detail and the error log: the failure could not be classified.",
  "4xx": "",
  "5xx": "",
  response_too_large: "",
};

export function diagnose(input: DiagnosisInput): Diagnosis {
  const paused = input.status === "paused";
  const resume =
    "Resume the subscription (API PATCH status=active, herald resume, or the panel); dispatch restarts from the head.";
  const head = input.head;
  const attempts = head === null ? [] : sortAttempts(head.attempts);
  const latest = attempts.at(-1) ?? null;
  const headId = head === null ? "" : String(head.event_id);
  const failures = attempts.filter((a) => failureKind(a) !== null);
  const failedCount = plural(failures.length, "failed attempt");
  const attemptState = (a: HeadAttempt): string => `attempt ${a.attempt_number} ${STATE_WORDS[a.status]}`;
  const progress = `${failedCount}${latest === null ? "" : `; ${attemptState(latest)}`}`;

  // 1. The head is finished (in the DLQ) but the subscription stays stuck behind it.
  const stuck = paused || input.pending_count >= input.pending_ceiling;
  if (head !== null && latest?.status === "dlq" && stuck) {
    const kind = failureKind(latest);
    const how =
      kind === null
        ? "it was dropped by an operator"
        : `its last attempt failed with ${describeFailure(latest, kind)}`;
    const actions: string[] = [];
    if (paused) {
      actions.push(`${resume} Event ${headId} is already in the DLQ and will not block it.`);
    } else {
      actions.push(
        "Let the queue drain, or raise pending_ceiling (up to DISPATCHER_MAX_PENDING_HARD_CAP) if the backlog is expected.",
      );
    }
    if (input.pause_reason === "dlq_ceiling" && paused) {
      actions.push(
        `The DLQ (${input.dlq_count}) reached its dlq_ceiling: replay or review DLQ deliveries before resuming, or it pauses again.`,
      );
    }
    actions.push(`To re-send event ${headId}, fix its payload if needed and replay it from the DLQ.`);
    return {
      branch: "head_terminated",
      summary:
        `Head event ${headId} is already in the DLQ after ${failedCount} (${how}), but the queue is still stuck. ` +
        queueState(input),
      actions,
    };
  }

  // 2. The head is live and failing: whose fault?
  const lastFailure = failures.at(-1) ?? null;
  const headLive = latest !== null && latest.status !== "dlq" && latest.status !== "delivered";
  if (head !== null && headLive && lastFailure !== null) {
    const kind = failureKind(lastFailure)!;
    const failure = describeFailure(lastFailure, kind);
    const blocking =
      input.ordering === "ordered"
        ? "The queue is ordered: every later event waits behind it."
        : "The subscription is unordered: other events are still sent.";
    const others = input.recent_errors_other_events;

    if (errorKindClass(kind) === "transport" || others > 0) {
      const check =
        errorKindClass(kind) === "transport"
          ? TRANSPORT_CHECKS[kind]
          : `The consumer fails other events too (${plural(others, "failed attempt")} of other events in the last hour): ` +
            "fix the consumer, not this event.";
      const why =
        errorKindClass(kind) === "transport"
          ? "the consumer cannot be reached"
          : `the consumer answers with errors for other events as well (${plural(others, "failed attempt")} in the last hour)`;
      const actions = [
        check,
        "Wait for the consumer: deliveries retry on their back-off schedule. Do not drop the head: the next events would fail the same way.",
      ];
      if (paused) actions.push(`Once the consumer is back: ${resume}`);
      return {
        branch: "consumer_unreachable",
        summary:
          `Consumer unreachable: head event ${headId} failed with ${failure} (${progress}); ${why}. ` +
          `${blocking} ${queueState(input)}`,
        actions,
      };
    }

    const answer =
      kind === "response_too_large"
        ? "its response body was larger than Herald accepts"
        : lastFailure.response_status === null
          ? `it answered with a ${kind} error`
          : `it answered HTTP ${lastFailure.response_status}`;
    const actions = [
      `Read event ${headId}'s attempts and the consumer's answer to see why it rejects this event (${answer}).`,
      `Fix and replay: repair event ${headId}'s payload (the old payload is kept in the audit log); the head is then replayed.`,
      input.ordering === "ordered"
        ? `Drop the head with a reason: its pending deliveries go to the DLQ and the cursor moves past event ${headId}.`
        : `Drop the head with a reason: its pending deliveries go to the DLQ.`,
      "Wait: if the consumer will be fixed to accept it, retries continue until the attempts run out (then it goes to the DLQ).",
    ];
    if (paused) actions.push(`Then: ${resume}`);
    return {
      branch: "head_rejected",
      summary:
        `Consumer rejects head event ${headId}: ${failure} (${progress}); ${answer}, while other events ` +
        `do not fail. ${blocking} ${queueState(input)}`,
      actions,
    };
  }

  // 3. No blocking failure, but a large backlog.
  const pausedByPending = paused && input.pause_reason === "pending_ceiling";
  const large = input.pending_count * 100 >= BEHIND_PERCENT * input.pending_ceiling;
  const headText =
    head === null
      ? "The queue has no head."
      : `Head event ${headId} has no failure blocking it (${progress}).`;
  const otherErrors =
    input.recent_errors_other_events > 0
      ? `${plural(input.recent_errors_other_events, "attempt")} of other events failed in the last hour: see the error log.`
      : null;
  if (pausedByPending || (large && input.pending_count > 0)) {
    const actions = [
      "Check that dispatcher processes are running (herald start or herald dispatcher) and can reach the store and the consumer.",
      input.ordering === "ordered"
        ? "An ordered queue sends one event at a time: the consumer's latency bounds its rate; check it."
        : "If the consumer keeps up, raise the subscription's max_in_flight or DISPATCHER_MAX_CONCURRENT_POSTS.",
    ];
    if (pausedByPending) {
      actions.push(`${resume} Nothing was dropped while paused.`);
      actions.push(
        "If the backlog is expected, raise pending_ceiling (up to DISPATCHER_MAX_PENDING_HARD_CAP).",
      );
    } else if (paused) {
      actions.push(resume);
    }
    if (otherErrors !== null) actions.push(otherErrors);
    return {
      branch: "dispatcher_behind",
      summary: `Dispatcher behind: the backlog grows without delivery errors on the head. ${headText} ${queueState(input)}`,
      actions,
    };
  }

  // 4. Nothing wrong with the queue itself.
  const actions: string[] = [];
  if (paused && input.pause_reason === "dlq_ceiling") {
    actions.push(
      `Review the DLQ (${input.dlq_count} deliveries) and replay what should be re-sent; it reached its dlq_ceiling.`,
    );
  }
  if (paused) actions.push(resume);
  if (otherErrors !== null) actions.push(otherErrors);
  if (actions.length === 0) actions.push("No action needed.");
  return {
    branch: "healthy",
    summary: `Healthy: ${head === null ? "the queue is empty." : `${headText}`} ${queueState(input)}`,
    actions,
  };
}
