import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_RETRY_SCHEDULE_MS,
  MAX_RETRY_DELAY_MS,
  MAX_RETRY_SCHEDULE_ENTRIES,
  maxAttempts,
  parseHttpDate,
  parseRetryAfter,
  parseRetrySchedule,
  RETRY_AFTER_MIN_MS,
  RETRY_SCHEDULE_ENV,
  retryDelayMs,
} from "../../src/domain/retry-schedule.ts";

const NOW = Date.UTC(2025, 5, 15, 12, 0, 0); // Sun, 15 Jun 2025 12:00:00 GMT

describe("defaults and constants", () => {
  it("the default schedule is the contract's and gives 8 attempts", () => {
    expect(DEFAULT_RETRY_SCHEDULE_MS).toEqual([5000, 30000, 120000, 600000, 1800000, 3600000, 10800000]);
    expect(maxAttempts(DEFAULT_RETRY_SCHEDULE_MS)).toBe(8);
    expect(Object.isFrozen(DEFAULT_RETRY_SCHEDULE_MS)).toBe(true);
  });

  it("bounds", () => {
    expect(RETRY_SCHEDULE_ENV).toBe("HERALD_RETRY_SCHEDULE_MS");
    expect(MAX_RETRY_SCHEDULE_ENTRIES).toBe(20);
    expect(MAX_RETRY_DELAY_MS).toBe(604_800_000);
    expect(RETRY_AFTER_MIN_MS).toBe(1000);
  });

  it("maxAttempts is length + 1", () => {
    expect(maxAttempts([1000])).toBe(2);
    expect(maxAttempts([])).toBe(1);
    expect(maxAttempts(Array(20).fill(1))).toBe(21);
  });
});

describe("parseRetrySchedule", () => {
  it("parses the default value", () => {
    expect(parseRetrySchedule("5000,30000,120000,600000,1800000,3600000,10800000")).toEqual({
      ok: true,
      value: [...DEFAULT_RETRY_SCHEDULE_MS],
    });
  });

  it("accepts one entry, blanks around entries, and the 7-day maximum", () => {
    expect(parseRetrySchedule("1")).toEqual({ ok: true, value: [1] });
    expect(parseRetrySchedule(" 100 , 200,300 ")).toEqual({ ok: true, value: [100, 200, 300] });
    expect(parseRetrySchedule("604800000")).toEqual({ ok: true, value: [604_800_000] });
  });

  it("accepts exactly 20 entries and refuses 21", () => {
    expect(parseRetrySchedule(Array(20).fill("10").join(","))).toEqual({
      ok: true,
      value: Array(20).fill(10),
    });
    const r = parseRetrySchedule(Array(21).fill("10").join(","));
    expect(r).toEqual({ ok: false, message: "HERALD_RETRY_SCHEDULE_MS must list at most 20 delays; got 21" });
  });

  it.each(["", "   "])("refuses an empty value %j", (text) => {
    const r = parseRetrySchedule(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toContain("HERALD_RETRY_SCHEDULE_MS");
      expect(r.message).toContain("empty");
      expect(r.message).toContain("1 to 20");
    }
  });

  it.each([
    ["1000,,2000", "HERALD_RETRY_SCHEDULE_MS: entry 2 is empty"],
    ["1000,", "HERALD_RETRY_SCHEDULE_MS: entry 2 is empty"],
    [",1000", "HERALD_RETRY_SCHEDULE_MS: entry 1 is empty"],
    ["1000,abc", 'HERALD_RETRY_SCHEDULE_MS: entry 2 "abc" is not a positive integer number of milliseconds'],
    ["-5", 'HERALD_RETRY_SCHEDULE_MS: entry 1 "-5" is not a positive integer number of milliseconds'],
    ["+5", 'HERALD_RETRY_SCHEDULE_MS: entry 1 "+5" is not a positive integer number of milliseconds'],
    ["1.5", 'HERALD_RETRY_SCHEDULE_MS: entry 1 "1.5" is not a positive integer number of milliseconds'],
    ["1e3", 'HERALD_RETRY_SCHEDULE_MS: entry 1 "1e3" is not a positive integer number of milliseconds'],
    ["10 00", 'HERALD_RETRY_SCHEDULE_MS: entry 1 "10 00" is not a positive integer number of milliseconds'],
    ["5s", 'HERALD_RETRY_SCHEDULE_MS: entry 1 "5s" is not a positive integer number of milliseconds'],
    [
      "1000;2000",
      'HERALD_RETRY_SCHEDULE_MS: entry 1 "1000;2000" is not a positive integer number of milliseconds',
    ],
    ["5000,0", 'HERALD_RETRY_SCHEDULE_MS: entry 2 "0" must be at least 1 ms'],
    [
      "5000,604800001",
      'HERALD_RETRY_SCHEDULE_MS: entry 2 "604800001" exceeds the maximum of 604800000 ms (7 days)',
    ],
    [
      "99999999999999999999999",
      'HERALD_RETRY_SCHEDULE_MS: entry 1 "99999999999999999999999" exceeds the maximum of 604800000 ms (7 days)',
    ],
  ])("refuses %j", (text, message) => {
    expect(parseRetrySchedule(text)).toEqual({ ok: false, message });
  });

  it("property: any list of 1..20 delays in range round-trips", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: MAX_RETRY_DELAY_MS }), { minLength: 1, maxLength: 20 }),
        (delays) => {
          expect(parseRetrySchedule(delays.join(","))).toEqual({ ok: true, value: delays });
        },
      ),
    );
  });

  it("property: any entry out of range is refused and named", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: MAX_RETRY_DELAY_MS }), { minLength: 0, maxLength: 10 }),
        fc.oneof(fc.constant(0), fc.integer({ min: MAX_RETRY_DELAY_MS + 1, max: Number.MAX_SAFE_INTEGER })),
        (good, bad) => {
          const r = parseRetrySchedule([...good, bad].join(","));
          expect(r.ok).toBe(false);
          if (!r.ok) {
            expect(r.message).toContain(RETRY_SCHEDULE_ENV);
            expect(r.message).toContain(`entry ${good.length + 1} "${bad}"`);
          }
        },
      ),
    );
  });
});

describe("parseHttpDate", () => {
  const expected = Date.UTC(1994, 10, 6, 8, 49, 37);

  it("parses the three RFC 9110 formats", () => {
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", NOW)).toBe(expected);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", NOW)).toBe(expected);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994", NOW)).toBe(expected);
    expect(parseHttpDate("Sun Nov 16 08:49:37 1994", NOW)).toBe(Date.UTC(1994, 10, 16, 8, 49, 37));
  });

  it("interprets a two-digit year as within 50 years from now", () => {
    expect(parseHttpDate("Monday, 16-Jun-25 12:00:00 GMT", NOW)).toBe(Date.UTC(2025, 5, 16, 12));
    expect(parseHttpDate("Thursday, 01-Jan-70 00:00:00 GMT", NOW)).toBe(Date.UTC(2070, 0, 1));
    expect(parseHttpDate("Wednesday, 01-Jan-76 00:00:00 GMT", NOW)).toBe(Date.UTC(1976, 0, 1));
  });

  it("is case-insensitive for names", () => {
    expect(parseHttpDate("sun, 06 nov 1994 08:49:37 gmt", NOW)).toBe(expected);
  });

  it.each([
    "Sun, 31 Feb 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 24:00:00 GMT",
    "Sun, 06 Nov 1994 08:60:00 GMT",
    "Sun, 06 Foo 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:49:37 UTC",
    "Sun, 06 Nov 1994 08:49:37 +0000",
    "Sun, 6 Nov 1994 08:49:37 GMT",
    "Xyz, 06 Nov 1994 08:49:37 GMT",
    "1994-11-06T08:49:37Z",
    "2025",
    "1",
    "tomorrow",
    "",
  ])("refuses %j", (text) => {
    expect(parseHttpDate(text, NOW)).toBeNull();
  });
});

describe("parseRetryAfter", () => {
  it("absent or blank → null", () => {
    expect(parseRetryAfter(undefined, NOW)).toBeNull();
    expect(parseRetryAfter("", NOW)).toBeNull();
    expect(parseRetryAfter("   ", NOW)).toBeNull();
  });

  it("delta-seconds → ms", () => {
    expect(parseRetryAfter("0", NOW)).toBe(0);
    expect(parseRetryAfter("1", NOW)).toBe(1000);
    expect(parseRetryAfter("120", NOW)).toBe(120_000);
    expect(parseRetryAfter(" 30 ", NOW)).toBe(30_000);
  });

  it("an HTTP-date → ms from now; a past date → 0", () => {
    expect(parseRetryAfter("Sun, 15 Jun 2025 12:01:30 GMT", NOW)).toBe(90_000);
    expect(parseRetryAfter("Sun, 15 Jun 2025 12:00:00 GMT", NOW)).toBe(0);
    expect(parseRetryAfter("Sun, 15 Jun 2025 11:00:00 GMT", NOW)).toBe(0);
    expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", NOW)).toBe(0);
  });

  it.each(["-5", "1.5", "5s", "soon", "1e3", "0x10", "Sun, 15 Jun 2025", "2025-06-15T12:01:30Z", "Infinity"])(
    "garbage %j → null",
    (value) => {
      expect(parseRetryAfter(value, NOW)).toBeNull();
    },
  );

  it("property: delta-seconds n → n * 1000", () => {
    fc.assert(
      fc.property(fc.nat(10_000_000), (n) => {
        expect(parseRetryAfter(String(n), NOW)).toBe(n * 1000);
      }),
    );
  });

  it("property: an IMF-fixdate d → max(0, d - now) (second precision)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1990, 0, 1) / 1000, max: Date.UTC(2090, 0, 1) / 1000 }),
        fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2090, 0, 1) }),
        (seconds, now) => {
          const at = seconds * 1000;
          const header = new Date(at).toUTCString(); // IMF-fixdate
          expect(parseRetryAfter(header, now)).toBe(Math.max(0, at - now));
        },
      ),
    );
  });
});

describe("retryDelayMs", () => {
  const schedule = DEFAULT_RETRY_SCHEDULE_MS;

  it("uses the entry of the failed attempt as base, jittered by random()", () => {
    expect(retryDelayMs({ failedAttempt: 1, schedule, random: () => 0 })).toBe(4000);
    expect(retryDelayMs({ failedAttempt: 1, schedule, random: () => 0.5 })).toBe(5000);
    expect(retryDelayMs({ failedAttempt: 1, schedule, random: () => 0.999999 })).toBe(5999);
    expect(retryDelayMs({ failedAttempt: 2, schedule, random: () => 0.5 })).toBe(30_000);
    expect(retryDelayMs({ failedAttempt: 7, schedule, random: () => 0 })).toBe(8_640_000);
    expect(retryDelayMs({ failedAttempt: 7, schedule, random: () => 0.5 })).toBe(10_800_000);
  });

  it("stays strictly below 1.2 × base, also where 1.2 × base is fractional", () => {
    expect(retryDelayMs({ failedAttempt: 1, schedule: [7], random: () => 0.999999 })).toBe(8);
    expect(retryDelayMs({ failedAttempt: 1, schedule: [7], random: () => 0 })).toBe(6);
    expect(retryDelayMs({ failedAttempt: 1, schedule: [1], random: () => 0.99 })).toBe(1);
  });

  it("calls random() once without Retry-After and never with an honoured one", () => {
    let calls = 0;
    const random = () => {
      calls += 1;
      return 0.3;
    };
    retryDelayMs({ failedAttempt: 1, schedule, random });
    expect(calls).toBe(1);
    retryDelayMs({ failedAttempt: 1, schedule, retryAfterMs: 60_000, random });
    expect(calls).toBe(1);
  });

  it("honours a Retry-After within [1 s, max(schedule)] as given, without jitter", () => {
    expect(retryDelayMs({ failedAttempt: 1, schedule, retryAfterMs: 60_000, random: () => 0 })).toBe(60_000);
    expect(retryDelayMs({ failedAttempt: 1, schedule, retryAfterMs: 1000, random: () => 0 })).toBe(1000);
    // shorter than the scheduled base is honoured too
    expect(retryDelayMs({ failedAttempt: 5, schedule, retryAfterMs: 2000, random: () => 0 })).toBe(2000);
    expect(retryDelayMs({ failedAttempt: 1, schedule, retryAfterMs: 10_800_000, random: () => 0 })).toBe(
      10_800_000,
    );
  });

  it("clamps a Retry-After above max(schedule) to max(schedule)", () => {
    expect(retryDelayMs({ failedAttempt: 1, schedule, retryAfterMs: 10_800_001, random: () => 0 })).toBe(
      10_800_000,
    );
    expect(
      retryDelayMs({ failedAttempt: 1, schedule, retryAfterMs: Number.POSITIVE_INFINITY, random: () => 0 }),
    ).toBe(10_800_000);
    expect(retryDelayMs({ failedAttempt: 2, schedule: [100, 50], retryAfterMs: 5000, random: () => 0 })).toBe(
      100,
    );
  });

  it.each([0, 999, null, undefined, Number.NaN])(
    "ignores a Retry-After of %s (jittered base applies)",
    (ra) => {
      expect(retryDelayMs({ failedAttempt: 2, schedule, retryAfterMs: ra, random: () => 0.5 })).toBe(30_000);
    },
  );

  it.each([0, 8, -1, 1.5, Number.NaN])("refuses failedAttempt=%s with the default schedule", (n) => {
    expect(() => retryDelayMs({ failedAttempt: n, schedule, random: () => 0 })).toThrow(RangeError);
  });

  it("refuses an empty schedule and invalid entries", () => {
    expect(() => retryDelayMs({ failedAttempt: 1, schedule: [], random: () => 0 })).toThrow(RangeError);
    expect(() => retryDelayMs({ failedAttempt: 1, schedule: [0], random: () => 0 })).toThrow(RangeError);
    expect(() => retryDelayMs({ failedAttempt: 1, schedule: [0.5], random: () => 0 })).toThrow(RangeError);
  });

  it.each([1, 1.5, -0.1, Number.NaN])("refuses random() returning %s", (r) => {
    expect(() => retryDelayMs({ failedAttempt: 1, schedule, random: () => r })).toThrow(RangeError);
  });

  const scheduleArb = fc.array(fc.integer({ min: 1, max: MAX_RETRY_DELAY_MS }), {
    minLength: 1,
    maxLength: 20,
  });
  const caseArb = scheduleArb.chain((s) =>
    fc.record({
      schedule: fc.constant(s),
      failedAttempt: fc.integer({ min: 1, max: s.length }),
      r: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    }),
  );

  it("property: without Retry-After the delay is an integer in [0.8 × base, 1.2 × base)", () => {
    fc.assert(
      fc.property(caseArb, ({ schedule: s, failedAttempt, r }) => {
        const base = s[failedAttempt - 1]!;
        const delay = retryDelayMs({ failedAttempt, schedule: s, random: () => r });
        expect(Number.isInteger(delay)).toBe(true);
        // integer comparisons: 5·delay ≥ 4·base and 5·delay < 6·base
        expect(delay * 5).toBeGreaterThanOrEqual(base * 4);
        expect(delay * 5).toBeLessThan(base * 6);
      }),
    );
  });

  it("property: with a Retry-After of at least 1 s the delay is min(Retry-After, max(schedule))", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.oneof(
          fc.integer({ min: RETRY_AFTER_MIN_MS, max: 2 * MAX_RETRY_DELAY_MS }),
          fc.constant(Number.POSITIVE_INFINITY),
        ),
        ({ schedule: s, failedAttempt, r }, retryAfterMs) => {
          const delay = retryDelayMs({ failedAttempt, schedule: s, retryAfterMs, random: () => r });
          const max = Math.max(...s);
          expect(delay).toBeLessThanOrEqual(max);
          expect(delay).toBe(Math.min(retryAfterMs, max));
        },
      ),
    );
  });

  it("property: a Retry-After under 1 s is ignored (the jittered base applies)", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.integer({ min: 0, max: RETRY_AFTER_MIN_MS - 1 }),
        ({ schedule: s, failedAttempt, r }, retryAfterMs) => {
          const delay = retryDelayMs({ failedAttempt, schedule: s, retryAfterMs, random: () => r });
          expect(delay).toBe(retryDelayMs({ failedAttempt, schedule: s, random: () => r }));
        },
      ),
    );
  });

  it("property: deterministic for the same random value; monotone in it", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        ({ schedule: s, failedAttempt, r }, r2) => {
          const a = retryDelayMs({ failedAttempt, schedule: s, random: () => r });
          const b = retryDelayMs({ failedAttempt, schedule: s, random: () => r });
          expect(a).toBe(b);
          const c = retryDelayMs({ failedAttempt, schedule: s, random: () => r2 });
          if (r <= r2) expect(a).toBeLessThanOrEqual(c);
          else expect(a).toBeGreaterThanOrEqual(c);
        },
      ),
    );
  });
});
