import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DELIVERY_STATUSES } from "../../src/domain/delivery-state.ts";
import {
  ANSWER_ERROR_KINDS,
  DIAGNOSIS_BRANCHES,
  type DiagnosisInput,
  diagnose,
  ERROR_KINDS,
  type ErrorKindLike,
  errorKindClass,
  type HeadAttempt,
  sortAttempts,
  TRANSPORT_ERROR_KINDS,
} from "../../src/domain/diagnosis.ts";

const T0 = Date.UTC(2025, 5, 15, 12, 0, 0);

function at(minutes: number): Date {
  return new Date(T0 + minutes * 60_000);
}

function failed(n: number, kind: ErrorKindLike | null, status: number | null = null): HeadAttempt {
  return {
    attempt_number: n,
    status: "failed",
    error_kind: kind,
    response_status: status,
    attempted_at: at(n),
  };
}

function pending(n: number): HeadAttempt {
  return {
    attempt_number: n,
    status: "pending",
    error_kind: null,
    response_status: null,
    attempted_at: null,
  };
}

function input(overrides: Partial<DiagnosisInput> = {}): DiagnosisInput {
  return {
    ordering: "ordered",
    status: "active",
    pause_reason: null,
    pending_count: 3,
    in_flight_count: 0,
    dlq_count: 0,
    pending_ceiling: 10_000,
    failed_last_hour: 0,
    head: { event_id: "1042", attempts: [pending(1)] },
    recent_errors_other_events: 0,
    ...overrides,
  };
}

/** A head with `n - 1` failed attempts of `kind` and a pending attempt `n`. */
function failingHead(kind: ErrorKindLike, n = 3, status: number | null = null) {
  const attempts: HeadAttempt[] = [];
  for (let i = 1; i < n; i++) attempts.push(failed(i, kind, status));
  attempts.push(pending(n));
  return { event_id: "1042", attempts };
}

/** A head whose 8 attempts failed, the last one now in the DLQ. */
function terminatedHead(kind: ErrorKindLike | null = "4xx", status: number | null = 422) {
  const attempts: HeadAttempt[] = [];
  for (let i = 1; i < 8; i++) attempts.push(failed(i, kind ?? "4xx", status));
  attempts.push({
    attempt_number: 8,
    status: "dlq",
    error_kind: kind,
    response_status: status,
    attempted_at: at(8),
  });
  return { event_id: "1042", attempts };
}

describe("error kinds", () => {
  it("every kind is in exactly one class", () => {
    expect(ERROR_KINDS).toHaveLength(9);
    for (const kind of ERROR_KINDS) {
      const inTransport = TRANSPORT_ERROR_KINDS.includes(kind);
      const inAnswer = ANSWER_ERROR_KINDS.includes(kind);
      expect(inTransport !== inAnswer).toBe(true);
      expect(errorKindClass(kind)).toBe(inAnswer ? "answer" : "transport");
    }
  });

  it.each([
    ["dns", "transport"],
    ["connection", "transport"],
    ["tls", "transport"],
    ["timeout", "transport"],
    ["ssrf_blocked", "transport"],
    ["unknown", "transport"],
    ["4xx", "answer"],
    ["5xx", "answer"],
    ["response_too_large", "answer"],
  ] as const)("%s is a %s failure", (kind, cls) => {
    expect(errorKindClass(kind)).toBe(cls);
  });
});

describe("sortAttempts", () => {
  it("orders by attempted_at, never-attempted rows last, then by attempt_number", () => {
    const replayPending = pending(1);
    const a1 = failed(1, "5xx", 500);
    const a2 = failed(2, "5xx", 500);
    const dropped: HeadAttempt = { ...pending(3), status: "dlq" };
    const sorted = sortAttempts([replayPending, dropped, a2, a1]);
    expect(sorted).toEqual([a1, a2, replayPending, dropped]);
  });

  it("does not mutate its input", () => {
    const list = [failed(2, "dns"), failed(1, "dns")];
    sortAttempts(list);
    expect(list.map((a) => a.attempt_number)).toEqual([2, 1]);
  });
});

describe("diagnose: consumer_unreachable", () => {
  it.each(["dns", "connection", "tls", "timeout"] as const)("the head's latest failure is %s", (kind) => {
    const d = diagnose(input({ head: failingHead(kind), failed_last_hour: 2 }));
    expect(d.branch).toBe("consumer_unreachable");
    expect(d.summary).toContain("event 1042");
    expect(d.summary).toContain(`error_kind ${kind}`);
    expect(d.summary).toContain("2 failed attempts; attempt 3 is pending");
    expect(d.summary).toContain("on attempt 2");
    expect(d.summary).toContain(at(2).toISOString());
    expect(d.actions.join("\n")).toMatch(/Wait for the consumer/);
    expect(d.actions.join("\n")).toMatch(/Do not drop the head/);
  });

  it.each([
    ["dns", /resolves/],
    ["connection", /accepts connections/],
    ["tls", /certificate/],
    ["timeout", /HERALD_REQUEST_TIMEOUT_MS/],
    ["ssrf_blocked", /HERALD_ALLOW_PRIVATE_TARGETS/],
    ["unknown", /error_detail/],
  ] as const)("%s gives a kind-specific first step", (kind, pattern) => {
    const d = diagnose(input({ head: failingHead(kind) }));
    expect(d.branch).toBe("consumer_unreachable");
    expect(d.actions[0]).toMatch(pattern);
  });

  it("a failed row without an error kind counts as unknown", () => {
    const d = diagnose(input({ head: { event_id: 7, attempts: [failed(1, null), pending(2)] } }));
    expect(d.branch).toBe("consumer_unreachable");
    expect(d.summary).toContain("error_kind unknown");
    expect(d.summary).toContain("event 7");
  });

  it("answer failures on the head while other events fail too: the consumer is down as a whole", () => {
    const d = diagnose(
      input({ head: failingHead("5xx", 4, 503), recent_errors_other_events: 12, failed_last_hour: 15 }),
    );
    expect(d.branch).toBe("consumer_unreachable");
    expect(d.summary).toContain("HTTP 503");
    expect(d.summary).toContain("12 failed attempts");
    expect(d.actions[0]).toMatch(/fails other events too/);
  });

  it("uses the latest failure, not the first", () => {
    const head = { event_id: "9", attempts: [failed(1, "4xx", 400), failed(2, "timeout"), pending(3)] };
    expect(diagnose(input({ head })).branch).toBe("consumer_unreachable");
    const head2 = { event_id: "9", attempts: [failed(2, "4xx", 400), failed(1, "timeout"), pending(3)] };
    expect(diagnose(input({ head: head2 })).branch).toBe("head_rejected");
  });

  it("takes precedence over a large backlog, and says how to resume when paused", () => {
    const d = diagnose(
      input({
        head: failingHead("connection"),
        status: "paused",
        pause_reason: "pending_ceiling",
        pending_count: 10_000,
      }),
    );
    expect(d.branch).toBe("consumer_unreachable");
    expect(d.summary).toContain("paused (pending_ceiling)");
    expect(d.actions.at(-1)).toMatch(/Once the consumer is back: Resume the subscription/);
  });

  it("does not suggest resuming an active subscription", () => {
    const d = diagnose(input({ head: failingHead("dns") }));
    expect(d.actions.join("\n")).not.toMatch(/Resume/);
  });

  it("also applies while the head's retry is in flight", () => {
    const attempts: HeadAttempt[] = [
      failed(1, "timeout"),
      { ...pending(2), status: "in_flight", attempted_at: at(5) },
    ];
    expect(diagnose(input({ head: { event_id: "1", attempts } })).branch).toBe("consumer_unreachable");
  });
});

describe("diagnose: head_rejected", () => {
  it("a 4xx on the head only, the poisoned-head story", () => {
    const d = diagnose(
      input({
        head: failingHead("4xx", 8, 422),
        status: "paused",
        pause_reason: "pending_ceiling",
        pending_count: 10_000,
        in_flight_count: 0,
        failed_last_hour: 3,
      }),
    );
    expect(d.branch).toBe("head_rejected");
    expect(d.summary).toContain("event 1042");
    expect(d.summary).toContain("error_kind 4xx (HTTP 422)");
    expect(d.summary).toContain("7 failed attempts; attempt 8 is pending");
    expect(d.summary).toContain("on attempt 7");
    expect(d.summary).toContain("10000 pending");
    expect(d.summary).toContain("every later event waits");
    const all = d.actions.join("\n");
    expect(all).toMatch(/Fix and replay/);
    expect(all).toMatch(/Drop the head with a reason/);
    expect(all).toMatch(/cursor moves past event 1042/);
    expect(all).toMatch(/^Wait/m);
    expect(d.actions.at(-1)).toMatch(/Resume the subscription/);
  });

  it("a 5xx on the head only", () => {
    const d = diagnose(input({ head: failingHead("5xx", 2, 500) }));
    expect(d.branch).toBe("head_rejected");
    expect(d.summary).toContain("HTTP 500");
    expect(d.summary).toContain("(1 failed attempt; attempt 2 is pending)");
    expect(d.actions.join("\n")).not.toMatch(/Resume/);
  });

  it("an answer kind without a status code still reads well", () => {
    const d = diagnose(input({ head: failingHead("4xx", 2, null) }));
    expect(d.branch).toBe("head_rejected");
    expect(d.summary).toContain("answered with a 4xx error");
  });

  it("response_too_large is a rejection of this event", () => {
    const d = diagnose(input({ head: failingHead("response_too_large", 3, 200) }));
    expect(d.branch).toBe("head_rejected");
    expect(d.summary).toContain("response body was larger");
  });

  it("unordered: does not speak of a cursor or a blocked queue", () => {
    const d = diagnose(input({ ordering: "unordered", head: failingHead("4xx", 2, 400) }));
    expect(d.branch).toBe("head_rejected");
    expect(d.summary).toContain("unordered");
    expect(d.actions.join("\n")).not.toMatch(/cursor/);
  });

  it("a failed head whose latest row is still the failed one (retry not yet scheduled)", () => {
    const d = diagnose(input({ head: { event_id: "5", attempts: [failed(1, "4xx", 409)] } }));
    expect(d.branch).toBe("head_rejected");
    expect(d.summary).toContain("HTTP 409");
  });

  it("an earlier operator-dropped row (dlq without error kind) is not a failure", () => {
    const dropped: HeadAttempt = { ...failed(1, null), status: "dlq", error_kind: null };
    const d = diagnose(
      input({ head: { event_id: "5", attempts: [dropped, failed(1, "4xx", 400), pending(2)] } }),
    );
    expect(d.branch).toBe("head_rejected");
  });
});

describe("diagnose: head_terminated", () => {
  it("the head is in the DLQ and the subscription is paused", () => {
    const d = diagnose(
      input({
        head: terminatedHead(),
        status: "paused",
        pause_reason: "pending_ceiling",
        pending_count: 10_000,
      }),
    );
    expect(d.branch).toBe("head_terminated");
    expect(d.summary).toContain("event 1042");
    expect(d.summary).toContain("after 8 failed attempts");
    expect(d.summary).toContain("error_kind 4xx (HTTP 422) on attempt 8");
    expect(d.actions[0]).toMatch(/Resume the subscription/);
    expect(d.actions.join("\n")).toMatch(/replay it from the DLQ/);
  });

  it("the head was dropped by an operator and the subscription is paused manually", () => {
    const dropped: HeadAttempt = { ...pending(3), status: "dlq" };
    const d = diagnose(
      input({
        head: { event_id: "77", attempts: [failed(1, "4xx", 400), failed(2, "4xx", 400), dropped] },
        status: "paused",
        pause_reason: "manual",
      }),
    );
    expect(d.branch).toBe("head_terminated");
    expect(d.summary).toContain("after 2 failed attempts (it was dropped by an operator)");
  });

  it("active but at the pending ceiling", () => {
    const d = diagnose(input({ head: terminatedHead("timeout", null), pending_count: 10_000 }));
    expect(d.branch).toBe("head_terminated");
    expect(d.summary).toContain("error_kind timeout on attempt 8");
    expect(d.actions[0]).toMatch(/raise pending_ceiling/);
    expect(d.actions.join("\n")).not.toMatch(/Resume/);
  });

  it("paused by the DLQ ceiling: review the DLQ before resuming", () => {
    const d = diagnose(
      input({ head: terminatedHead(), status: "paused", pause_reason: "dlq_ceiling", dlq_count: 1000 }),
    );
    expect(d.branch).toBe("head_terminated");
    expect(d.actions.join("\n")).toMatch(/DLQ \(1000\) reached its dlq_ceiling/);
  });

  it("not stuck: a finished head does not block, falls through to the backlog checks", () => {
    expect(diagnose(input({ head: terminatedHead(), pending_count: 5 })).branch).toBe("healthy");
    expect(diagnose(input({ head: terminatedHead(), pending_count: 1_000 })).branch).toBe(
      "dispatcher_behind",
    );
  });
});

describe("diagnose: dispatcher_behind", () => {
  it("pending ≥ 10 % of the ceiling with no failure on the head", () => {
    const d = diagnose(input({ pending_count: 1_000, in_flight_count: 1 }));
    expect(d.branch).toBe("dispatcher_behind");
    expect(d.summary).toContain("event 1042");
    expect(d.summary).toContain("1000 pending (1 in flight)");
    expect(d.summary).toContain("pending_ceiling of 10000");
    expect(d.actions[0]).toMatch(/dispatcher processes are running/);
    expect(d.actions.join("\n")).not.toMatch(/Resume/);
  });

  it("just below 10 % is healthy", () => {
    expect(diagnose(input({ pending_count: 999 })).branch).toBe("healthy");
  });

  it("paused by the pending ceiling even with a small count", () => {
    const d = diagnose(input({ status: "paused", pause_reason: "pending_ceiling", pending_count: 10 }));
    expect(d.branch).toBe("dispatcher_behind");
    const all = d.actions.join("\n");
    expect(all).toMatch(/Resume the subscription/);
    expect(all).toMatch(/Nothing was dropped/);
    expect(all).toMatch(/raise pending_ceiling/);
  });

  it("a stale pause_reason on an active subscription does not count", () => {
    expect(diagnose(input({ pause_reason: "pending_ceiling", pending_count: 10 })).branch).toBe("healthy");
  });

  it("paused manually with a large backlog: suggests resume", () => {
    const d = diagnose(input({ status: "paused", pause_reason: "manual", pending_count: 5_000 }));
    expect(d.branch).toBe("dispatcher_behind");
    expect(d.actions.at(-1)).toMatch(/Resume the subscription/);
  });

  it("ordered vs unordered advice", () => {
    expect(diagnose(input({ pending_count: 2_000 })).actions[1]).toMatch(/one event at a time/);
    expect(diagnose(input({ ordering: "unordered", pending_count: 2_000 })).actions[1]).toMatch(
      /max_in_flight/,
    );
  });

  it("mentions errors of other events when there are some", () => {
    const d = diagnose(input({ pending_count: 2_000, recent_errors_other_events: 4 }));
    expect(d.branch).toBe("dispatcher_behind");
    expect(d.actions.at(-1)).toBe("4 attempts of other events failed in the last hour: see the error log.");
  });

  it("a large backlog without a known head", () => {
    const d = diagnose(input({ head: null, pending_count: 2_000 }));
    expect(d.branch).toBe("dispatcher_behind");
    expect(d.summary).toContain("no head");
  });

  it("a delivered-but-not-yet-advanced head with earlier failures does not count as failing", () => {
    const delivered: HeadAttempt = { ...pending(3), status: "delivered", attempted_at: at(3) };
    const head = { event_id: "1", attempts: [failed(1, "4xx", 400), failed(2, "4xx", 400), delivered] };
    expect(diagnose(input({ head, pending_count: 2_000 })).branch).toBe("dispatcher_behind");
    expect(diagnose(input({ head, pending_count: 2 })).branch).toBe("healthy");
  });
});

describe("diagnose: healthy", () => {
  it("an empty queue", () => {
    const d = diagnose(input({ head: null, pending_count: 0 }));
    expect(d).toEqual({
      branch: "healthy",
      summary:
        "Healthy: the queue is empty. 0 pending (0 in flight) against a pending_ceiling of 10000; 0 in the DLQ; " +
        "0 failed attempts in the last hour.",
      actions: ["No action needed."],
    });
  });

  it("a small queue whose head has not failed", () => {
    const d = diagnose(input({ failed_last_hour: 1 }));
    expect(d.branch).toBe("healthy");
    expect(d.summary).toContain(
      "Head event 1042 has no failure blocking it (0 failed attempts; attempt 1 is pending).",
    );
    expect(d.summary).toContain("1 failed attempt in the last hour");
    expect(d.actions).toEqual(["No action needed."]);
  });

  it("paused manually: suggests resume", () => {
    const d = diagnose(input({ status: "paused", pause_reason: "manual" }));
    expect(d.branch).toBe("healthy");
    expect(d.summary).toContain("paused (manual)");
    expect(d.actions).toHaveLength(1);
    expect(d.actions[0]).toMatch(/Resume the subscription/);
  });

  it("paused by the DLQ ceiling: review the DLQ, then resume", () => {
    const d = diagnose(input({ status: "paused", pause_reason: "dlq_ceiling", dlq_count: 1_000 }));
    expect(d.branch).toBe("healthy");
    expect(d.actions[0]).toMatch(/Review the DLQ \(1000 deliveries\)/);
    expect(d.actions[1]).toMatch(/Resume the subscription/);
  });

  it("errors on other events are pointed out", () => {
    const d = diagnose(input({ recent_errors_other_events: 1 }));
    expect(d.branch).toBe("healthy");
    expect(d.actions).toEqual(["1 attempt of other events failed in the last hour: see the error log."]);
  });

  it("a bigint event id is printed", () => {
    const d = diagnose(input({ head: { event_id: 9007199254740993n, attempts: [pending(1)] } }));
    expect(d.summary).toContain("9007199254740993");
  });
});

describe("diagnose: properties", () => {
  const attemptArb: fc.Arbitrary<HeadAttempt> = fc.record({
    attempt_number: fc.integer({ min: 1, max: 8 }),
    status: fc.constantFrom(...DELIVERY_STATUSES),
    error_kind: fc.option(fc.constantFrom(...ERROR_KINDS)),
    response_status: fc.option(fc.integer({ min: 100, max: 599 })),
    attempted_at: fc.option(fc.integer({ min: 0, max: 10_000 }).map((m) => at(m))),
  });
  const inputArb: fc.Arbitrary<DiagnosisInput> = fc.record({
    ordering: fc.constantFrom("ordered" as const, "unordered" as const),
    status: fc.constantFrom("active" as const, "paused" as const),
    pause_reason: fc.constantFrom(
      null,
      "manual" as const,
      "pending_ceiling" as const,
      "dlq_ceiling" as const,
    ),
    pending_count: fc.nat(60_000),
    in_flight_count: fc.nat(100),
    dlq_count: fc.nat(5_000),
    pending_ceiling: fc.integer({ min: 100, max: 50_000 }),
    failed_last_hour: fc.nat(1_000),
    head: fc.option(
      fc.record({
        event_id: fc.bigInt({ min: 1n, max: 2n ** 62n }),
        attempts: fc.array(attemptArb, { maxLength: 10 }),
      }),
    ),
    recent_errors_other_events: fc.nat(100),
  });

  it("always returns a known branch, a non-empty summary and at least one action", () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const d = diagnose(i);
        expect(DIAGNOSIS_BRANCHES).toContain(d.branch);
        expect(d.summary.length).toBeGreaterThan(0);
        expect(d.actions.length).toBeGreaterThan(0);
        for (const a of d.actions) expect(a.trim().length).toBeGreaterThan(0);
        if (i.head !== null) expect(d.summary).toContain(String(i.head.event_id));
        // a paused subscription is always told how to resume
        if (i.status === "paused") {
          expect(d.actions.join("\n")).toMatch(/Resume the subscription/);
        }
      }),
    );
  });

  it("a live head whose latest failure is a transport failure is always consumer_unreachable", () => {
    fc.assert(
      fc.property(
        inputArb,
        fc.constantFrom(...TRANSPORT_ERROR_KINDS),
        fc.array(fc.constantFrom(...ERROR_KINDS), { maxLength: 5 }),
        (i, kind, earlier) => {
          const attempts = [
            ...earlier.map((k, n) => failed(n + 1, k, null)),
            failed(earlier.length + 1, kind),
          ];
          attempts.push(pending(attempts.length + 1));
          const d = diagnose({ ...i, head: { event_id: "1", attempts } });
          expect(d.branch).toBe("consumer_unreachable");
          expect(d.summary).toContain(`error_kind ${kind}`);
        },
      ),
    );
  });

  it("a live head whose latest failure is an answer: head_rejected iff no other event fails", () => {
    fc.assert(
      fc.property(
        inputArb,
        fc.constantFrom(...ANSWER_ERROR_KINDS),
        fc.integer({ min: 100, max: 599 }),
        (i, kind, code) => {
          const d = diagnose({
            ...i,
            head: { event_id: "1", attempts: [failed(1, kind, code), pending(2)] },
          });
          expect(d.branch).toBe(
            i.recent_errors_other_events === 0 ? "head_rejected" : "consumer_unreachable",
          );
          expect(d.summary).toContain(`HTTP ${code}`);
        },
      ),
    );
  });

  it("without any failure on the head the branch depends only on the backlog", () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const d = diagnose({ ...i, head: { event_id: "1", attempts: [pending(1)] } });
        const behind =
          (i.status === "paused" && i.pause_reason === "pending_ceiling") ||
          (i.pending_count > 0 && i.pending_count * 10 >= i.pending_ceiling);
        expect(d.branch).toBe(behind ? "dispatcher_behind" : "healthy");
      }),
    );
  });
});
