import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ALLOWED_TRANSITIONS,
  assertTransition,
  canTransition,
  DELIVERY_STATUSES,
  type DeliveryStatus,
  InvalidTransitionError,
  isActive,
  isDeliveryStatus,
  isTerminal,
  outcomeOf,
} from "../../src/domain/delivery-state.ts";

const EXPECTED_ALLOWED = new Set([
  "pending>in_flight",
  "pending>dlq",
  "in_flight>delivered",
  "in_flight>failed",
  "in_flight>dlq",
  "in_flight>pending",
]);

const ALL_PAIRS: Array<[DeliveryStatus, DeliveryStatus]> = DELIVERY_STATUSES.flatMap((from) =>
  DELIVERY_STATUSES.map((to) => [from, to] as [DeliveryStatus, DeliveryStatus]),
);

describe("DELIVERY_STATUSES", () => {
  it("lists the five statuses in life-cycle order", () => {
    expect(DELIVERY_STATUSES).toEqual(["pending", "in_flight", "delivered", "failed", "dlq"]);
  });

  it("isDeliveryStatus accepts exactly the statuses", () => {
    for (const s of DELIVERY_STATUSES) expect(isDeliveryStatus(s)).toBe(true);
    for (const v of ["PENDING", "", "queued", "in-flight", null, undefined, 1, {}]) {
      expect(isDeliveryStatus(v)).toBe(false);
    }
  });
});

describe("canTransition", () => {
  it.each(ALL_PAIRS)("%s → %s matches the allowed set", (from, to) => {
    expect(canTransition(from, to)).toBe(EXPECTED_ALLOWED.has(`${from}>${to}`));
  });

  it("allows exactly six transitions", () => {
    expect(ALL_PAIRS.filter(([f, t]) => canTransition(f, t))).toHaveLength(6);
    expect(new Set(ALLOWED_TRANSITIONS.map(([f, t]) => `${f}>${t}`))).toEqual(EXPECTED_ALLOWED);
  });

  it("never allows a status to move to itself", () => {
    for (const s of DELIVERY_STATUSES) expect(canTransition(s, s)).toBe(false);
  });

  it("returns false for an unknown source status at run time", () => {
    expect(canTransition("bogus" as DeliveryStatus, "pending")).toBe(false);
  });
});

describe("assertTransition", () => {
  it.each(ALL_PAIRS)("%s → %s throws exactly when not allowed", (from, to) => {
    if (EXPECTED_ALLOWED.has(`${from}>${to}`)) {
      expect(() => assertTransition(from, to)).not.toThrow();
    } else {
      let caught: unknown;
      try {
        assertTransition(from, to);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(InvalidTransitionError);
      expect(caught).toBeInstanceOf(Error);
      const err = caught as InvalidTransitionError;
      expect(err.code).toBe("INVALID_TRANSITION");
      expect(err.from).toBe(from);
      expect(err.to).toBe(to);
      expect(err.message).toContain(from);
      expect(err.message).toContain(to);
    }
  });
});

describe("isTerminal / isActive", () => {
  it.each([
    ["pending", false, true],
    ["in_flight", false, true],
    ["delivered", true, false],
    ["failed", true, false],
    ["dlq", true, false],
  ] as const)("%s: terminal=%s active=%s", (status, terminal, active) => {
    expect(isTerminal(status)).toBe(terminal);
    expect(isActive(status)).toBe(active);
  });

  it("terminal statuses have no outgoing transition; non-terminal ones have at least one", () => {
    for (const from of DELIVERY_STATUSES) {
      const outgoing = DELIVERY_STATUSES.filter((to) => canTransition(from, to));
      expect(outgoing.length === 0).toBe(isTerminal(from));
    }
  });

  it("every status is exactly one of active or terminal", () => {
    for (const s of DELIVERY_STATUSES) expect(isActive(s)).toBe(!isTerminal(s));
  });
});

describe("outcomeOf", () => {
  it("a success is delivered, whatever the attempt", () => {
    expect(outcomeOf(1, 8, true)).toEqual({ status: "delivered" });
    expect(outcomeOf(8, 8, true)).toEqual({ status: "delivered" });
  });

  it("a failure before the last attempt is failed with a retry", () => {
    expect(outcomeOf(1, 8, false)).toEqual({ status: "failed", retry: true });
    expect(outcomeOf(7, 8, false)).toEqual({ status: "failed", retry: true });
  });

  it("a failure of the last attempt goes to dlq, not failed", () => {
    expect(outcomeOf(8, 8, false)).toEqual({ status: "dlq" });
    expect(outcomeOf(1, 1, false)).toEqual({ status: "dlq" });
  });

  it("an attempt beyond maxAttempts (schedule shortened) goes to dlq", () => {
    expect(outcomeOf(6, 3, false)).toEqual({ status: "dlq" });
    expect(outcomeOf(6, 3, true)).toEqual({ status: "delivered" });
  });

  it.each([
    [0, 8],
    [-1, 8],
    [1.5, 8],
    [Number.NaN, 8],
    [1, 0],
    [1, 2.5],
    [1, Number.POSITIVE_INFINITY],
  ])("rejects attemptNumber=%s maxAttempts=%s", (attempt, max) => {
    expect(() => outcomeOf(attempt, max, false)).toThrow(RangeError);
  });

  it("property: failure → dlq iff attempt ≥ max; success → delivered", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        fc.boolean(),
        (a, m, ok) => {
          const out = outcomeOf(a, m, ok);
          if (ok) expect(out).toEqual({ status: "delivered" });
          else if (a >= m) expect(out).toEqual({ status: "dlq" });
          else expect(out).toEqual({ status: "failed", retry: true });
          // The outcome is always a legal destination from in_flight.
          expect(canTransition("in_flight", out.status)).toBe(true);
        },
      ),
    );
  });
});
