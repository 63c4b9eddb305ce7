import { outcomeOf } from "../domain/delivery-state.ts";
import { isRetryable, notRetriedDetail } from "../domain/error-kind.ts";
import { maxAttempts, retryDelayMs } from "../domain/retry-schedule.ts";
import type { SendResult } from "../http/sender.ts";
import type { AttemptResult } from "../store/record.ts";

/**
 * Turns what the sender saw into the row's outcome: delivered, failed with a retry delay, or dlq. A
 * failure of a kind that waiting cannot cure (`isRetryable`: `ssrf_blocked`) is `dlq` at once, so the
 * recording statement counts it toward the DLQ ceiling like any other DLQ landing and queues no retry.
 */
export function attemptResult(
  deliveryId: number,
  attemptNumber: number,
  sent: SendResult,
  schedule: readonly number[],
  random: () => number = Math.random,
): AttemptResult {
  const common = {
    delivery_id: deliveryId,
    response_status: sent.status,
    response_body: sent.responseBody,
    latency_ms: Math.round(sent.latencyMs),
  };
  if (sent.ok) {
    return { ...common, status: "delivered", error_kind: null, error_detail: null, retry_delay_ms: null };
  }
  if (!isRetryable(sent.kind)) {
    return {
      ...common,
      status: "dlq",
      error_kind: sent.kind,
      error_detail: notRetriedDetail(sent.detail),
      retry_delay_ms: null,
    };
  }
  const outcome = outcomeOf(attemptNumber, maxAttempts(schedule), false);
  const retryDelay =
    outcome.status === "failed"
      ? retryDelayMs({
          failedAttempt: Math.min(attemptNumber, schedule.length),
          schedule,
          retryAfterMs: sent.retryAfterMs,
          random,
        })
      : null;
  return {
    ...common,
    status: outcome.status === "failed" ? "failed" : "dlq",
    error_kind: sent.kind,
    error_detail: sent.detail,
    retry_delay_ms: retryDelay,
  };
}
