import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CEILING_MIN, crossesCeiling, HARD_CAP_ENV, validateCeiling } from "../../src/domain/ceilings.ts";

describe("validateCeiling", () => {
  it("CEILING_MIN is 100 and the env name is the hard cap's", () => {
    expect(CEILING_MIN).toBe(100);
    expect(HARD_CAP_ENV).toBe("DISPATCHER_MAX_PENDING_HARD_CAP");
  });

  it("accepts both bounds and values between", () => {
    expect(validateCeiling("pending_ceiling", 100, 50_000)).toEqual({ ok: true, value: 100 });
    expect(validateCeiling("pending_ceiling", 50_000, 50_000)).toEqual({ ok: true, value: 50_000 });
    expect(validateCeiling("dlq_ceiling", 1_000, 50_000)).toEqual({ ok: true, value: 1_000 });
  });

  it("names the field, both bounds, the env var and the value when above the cap", () => {
    expect(validateCeiling("pending_ceiling", 60_000, 50_000)).toEqual({
      ok: false,
      message: "pending_ceiling must be between 100 and 50000 (DISPATCHER_MAX_PENDING_HARD_CAP); got 60000",
    });
  });

  it("refuses values below the minimum, naming the field", () => {
    expect(validateCeiling("dlq_ceiling", 99, 50_000)).toEqual({
      ok: false,
      message: "dlq_ceiling must be between 100 and 50000 (DISPATCHER_MAX_PENDING_HARD_CAP); got 99",
    });
    expect(validateCeiling("pending_ceiling", 0, 50_000).ok).toBe(false);
    expect(validateCeiling("pending_ceiling", -500, 50_000).ok).toBe(false);
  });

  it("uses the given hard cap, not a fixed one", () => {
    expect(validateCeiling("pending_ceiling", 60_000, 100_000)).toEqual({ ok: true, value: 60_000 });
    const r = validateCeiling("pending_ceiling", 201, 200);
    expect(r).toEqual({
      ok: false,
      message: "pending_ceiling must be between 100 and 200 (DISPATCHER_MAX_PENDING_HARD_CAP); got 201",
    });
  });

  it.each([
    [150.5, "got 150.5"],
    [Number.NaN, "got NaN"],
    [Number.POSITIVE_INFINITY, "got Infinity"],
    ["500", 'got "500"'],
    [null, "got null"],
    [undefined, "got undefined"],
    [true, "got true"],
    [[500], "got an array"],
    [{ value: 500 }, "got an object"],
    [500n, "got 500"],
  ])("refuses the non-integer %s", (value, got) => {
    const r = validateCeiling("pending_ceiling", value, 50_000);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toBe(
        `pending_ceiling must be an integer between 100 and 50000 (DISPATCHER_MAX_PENDING_HARD_CAP); ${got}`,
      );
    }
  });

  it.each([99, 0, 100.5, Number.NaN])("throws on an invalid hard cap %s", (cap) => {
    expect(() => validateCeiling("pending_ceiling", 100, cap)).toThrow(RangeError);
  });

  it("property: ok iff an integer within [100, hardCap]", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -1_000, max: 200_000 }), fc.double({ noNaN: false })),
        fc.integer({ min: 100, max: 150_000 }),
        fc.constantFrom("pending_ceiling" as const, "dlq_ceiling" as const),
        (value, cap, field) => {
          const r = validateCeiling(field, value, cap);
          const expected = Number.isInteger(value) && value >= 100 && value <= cap;
          expect(r.ok).toBe(expected);
          if (r.ok) expect(r.value).toBe(value);
          else {
            expect(r.message.startsWith(`${field} must be`)).toBe(true);
            expect(r.message).toContain(`between 100 and ${cap} (DISPATCHER_MAX_PENDING_HARD_CAP)`);
          }
        },
      ),
    );
  });
});

describe("crossesCeiling", () => {
  it("pauses when the count reaches the ceiling, not before", () => {
    expect(crossesCeiling(9_999, 10_000)).toBe(false);
    expect(crossesCeiling(10_000, 10_000)).toBe(true);
    expect(crossesCeiling(10_001, 10_000)).toBe(true);
    expect(crossesCeiling(0, 100)).toBe(false);
  });

  it("property: equivalent to countAfter >= ceiling", () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.integer({ min: 1, max: 1_000_000 }), (count, ceiling) => {
        expect(crossesCeiling(count, ceiling)).toBe(count >= ceiling);
      }),
    );
  });
});
