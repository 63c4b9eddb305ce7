import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  boundViolation,
  canCancel,
  canonicalEventId,
  canResume,
  chunkRetryDelayMs,
  classifyItem,
  dryRunOutcome,
  type ItemFacts,
  MAX_ID_LENGTH,
  outcomeOf,
  parseIdsFile,
  planJob,
  RETRIGGER_BOUNDS,
} from "../../src/domain/retrigger.ts";

describe("parseIdsFile", () => {
  it("takes one ID per line, ignores blank lines and # comments, trims, collapses duplicates in first-seen order", () => {
    const text = [
      "# contracts to re-send",
      "c-1",
      "",
      "  c-2  ",
      "c-1",
      "   # an indented comment",
      "\t",
      "c-3",
      "c-2",
    ].join("\n");
    expect(parseIdsFile(text, "aggregate")).toEqual({
      ids: ["c-1", "c-2", "c-3"],
      duplicates: 2,
      errors: [],
    });
  });

  it("accepts Windows line ends, a byte-order mark and a missing final newline", () => {
    expect(parseIdsFile("\uFEFFa\r\nb\r\n\r\nc", "aggregate").ids).toEqual(["a", "b", "c"]);
  });

  it("keeps a # inside an ID (only lines that start with # are comments)", () => {
    expect(parseIdsFile("order#7\n#note", "aggregate").ids).toEqual(["order#7"]);
  });

  it("reads event IDs as positive integers in canonical form, so 007 and 7 collapse", () => {
    expect(parseIdsFile("7\n007\n12\n", "event")).toEqual({ ids: ["7", "12"], duplicates: 1, errors: [] });
  });

  it("names each bad event ID line by number", () => {
    const r = parseIdsFile("1\nabc\n\n-4\n0\n2.5\n", "event");
    expect(r.ids).toEqual(["1"]);
    expect(r.errors.map((e) => e.line)).toEqual([2, 4, 5, 6]);
    expect(r.errors[0]!.message).toBe('line 2: "abc" is not an event ID (a positive integer)');
  });

  it("refuses an aggregate ID longer than the limit, naming the line and the bound", () => {
    const r = parseIdsFile(`ok\n${"x".repeat(MAX_ID_LENGTH + 1)}\n`, "aggregate");
    expect(r.ids).toEqual(["ok"]);
    expect(r.errors).toEqual([
      { line: 2, message: `line 2: the ID is longer than ${MAX_ID_LENGTH} characters` },
    ]);
  });

  it("an empty or comment-only file lists nothing", () => {
    expect(parseIdsFile("", "aggregate")).toEqual({ ids: [], duplicates: 0, errors: [] });
    expect(parseIdsFile("# nothing\n\n", "event")).toEqual({ ids: [], duplicates: 0, errors: [] });
  });

  it("property: the result is the distinct non-comment lines, and parsing it again changes nothing", () => {
    const line = fc.oneof(fc.constantFrom("", "# c", "  "), fc.stringMatching(/^[a-z0-9-]{1,8}$/));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 50 }), (lines) => {
        const r = parseIdsFile(lines.join("\n"), "aggregate");
        const wanted = [...new Set(lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")))];
        expect(r.ids).toEqual(wanted);
        expect(parseIdsFile(r.ids.join("\n"), "aggregate")).toEqual({
          ids: wanted,
          duplicates: 0,
          errors: [],
        });
      }),
    );
  });
});

describe("canonicalEventId", () => {
  it("accepts positive safe integers only", () => {
    expect(canonicalEventId("42")).toBe("42");
    expect(canonicalEventId("0042")).toBe("42");
    for (const bad of ["0", "-1", "1e3", "1.0", "", " 1", "9007199254740993"]) {
      expect(canonicalEventId(bad), bad).toBeNull();
    }
  });
});

describe("boundViolation", () => {
  it("accepts both bounds and names the field and the bounds outside them", () => {
    expect(boundViolation("batch_size", 1)).toBeNull();
    expect(boundViolation("batch_size", 1000)).toBeNull();
    expect(boundViolation("batch_size", 0)).toBe("batch_size must be an integer between 1 and 1000; got 0");
    expect(boundViolation("batch_size", 1001)).toBe(
      "batch_size must be an integer between 1 and 1000; got 1001",
    );
    expect(boundViolation("delay_ms", 0)).toBeNull();
    expect(boundViolation("delay_ms", 3_600_001)).toBe(
      "delay_ms must be an integer between 0 and 3600000; got 3600001",
    );
    expect(boundViolation("chunk_budget_ms", 999)).toMatch(/chunk_budget_ms .* 1000 and 600000; got 999/);
    expect(boundViolation("batch_size", 2.5)).toMatch(/batch_size/);
  });

  it("defaults sit inside the bounds (batch_size 50)", () => {
    expect(RETRIGGER_BOUNDS.batch_size.default).toBe(50);
    for (const [field, b] of Object.entries(RETRIGGER_BOUNDS)) {
      expect(boundViolation(field as keyof typeof RETRIGGER_BOUNDS, b.default), field).toBeNull();
    }
  });
});

const found = { kind: "found", event_id: 10, aggregate_id: "c-1" } as const;
const facts = (over: Partial<ItemFacts>): ItemFacts => ({
  resolution: found,
  targets: ["sub_a"],
  skipDeliveredAfter: null,
  deliveredSince: new Map(),
  doneByJobAs: null,
  ...over,
});
const T = new Date("2026-01-01T00:00:00Z");

describe("classifyItem", () => {
  it("re-emits a found event to every target, in subscription order", () => {
    const d = classifyItem(facts({ targets: ["sub_b", "sub_a"] }));
    expect(d).toEqual({
      kind: "trigger",
      subscriptions: ["sub_a", "sub_b"],
      skippedSubscriptions: [],
      detail: null,
    });
    expect(dryRunOutcome(d)).toBe("WOULD_TRIGGER");
    expect(outcomeOf(d)).toBe("sent");
  });

  it("fails what did not resolve, with the resolution's reason, before anything else", () => {
    for (const kind of ["not_found", "other_tenant", "other_event_type"] as const) {
      const d = classifyItem(facts({ resolution: { kind, detail: "why" }, doneByJobAs: 5 }));
      expect(d).toEqual({ kind: "fail", reason: kind, detail: "why" });
      expect(dryRunOutcome(d)).toBe("WOULD_FAIL");
      expect(outcomeOf(d)).toBe("failed");
    }
  });

  it("fails when no live subscription would receive it", () => {
    expect(classifyItem(facts({ targets: [] }))).toMatchObject({
      kind: "fail",
      reason: "no_matching_subscription",
    });
  });

  it("skips a source this job already re-emitted", () => {
    const d = classifyItem(facts({ doneByJobAs: 77 }));
    expect(d).toEqual({
      kind: "skip",
      reason: "already_done_by_job",
      detail: "already re-emitted by this job as event 77",
    });
    expect(dryRunOutcome(d)).toBe("WOULD_SKIP");
    expect(outcomeOf(d)).toBe("skipped");
  });

  it("with skip_delivered_after: skips when every target already had it since, naming them", () => {
    const at = new Date("2026-01-02T00:00:00Z");
    const d = classifyItem(facts({ skipDeliveredAfter: T, deliveredSince: new Map([["sub_a", at]]) }));
    expect(d).toEqual({
      kind: "skip",
      reason: "delivered_since",
      detail: "delivered since 2026-01-01T00:00:00.000Z: sub_a at 2026-01-02T00:00:00.000Z",
    });
  });

  it("with skip_delivered_after: leaves out only the subscriptions that had it, sends to the rest", () => {
    const at = new Date("2026-01-02T00:00:00Z");
    const d = classifyItem(
      facts({ targets: ["sub_a", "sub_b"], skipDeliveredAfter: T, deliveredSince: new Map([["sub_a", at]]) }),
    );
    expect(d).toMatchObject({ kind: "trigger", subscriptions: ["sub_b"], skippedSubscriptions: ["sub_a"] });
    expect(d.detail).toContain("sub_a");
  });

  it("ignores deliveries when skip_delivered_after is not set", () => {
    const d = classifyItem(facts({ deliveredSince: new Map([["sub_a", T]]) }));
    expect(d.kind).toBe("trigger");
  });
});

describe("planJob", () => {
  it("529 items in chunks of 50: 11 chunks, delays between them", () => {
    const p = planJob({ items: 529, batchSize: 50, delayMs: 1000, chunkBudgetMs: 30_000, itemMs: 5 });
    expect(p).toMatchObject({ items: 529, chunks: 11, batch_size: 50, delay_ms: 1000 });
    expect(p.estimated_duration_ms).toBe(529 * 5 + 10 * 1000);
    expect(p.pace_items_per_second).toBeCloseTo((529 / p.estimated_duration_ms) * 1000, 1);
  });

  it("a time budget smaller than a full chunk's work makes more, smaller chunks", () => {
    const p = planJob({ items: 100, batchSize: 100, delayMs: 0, chunkBudgetMs: 1000, itemMs: 50 });
    expect(p.chunks).toBe(5);
  });

  it("nothing to do: no chunks, no time", () => {
    expect(planJob({ items: 0, batchSize: 50, delayMs: 500, chunkBudgetMs: 30_000 })).toMatchObject({
      chunks: 0,
      estimated_duration_ms: 0,
      pace_items_per_second: 0,
    });
  });

  it("property: chunks cover every item and never exceed batch_size each", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        (items, batchSize, delayMs) => {
          const p = planJob({ items, batchSize, delayMs, chunkBudgetMs: 600_000 });
          expect(p.chunks * batchSize).toBeGreaterThanOrEqual(items);
          expect(items === 0 || (p.chunks - 1) * batchSize < items).toBe(true);
          expect(p.estimated_duration_ms).toBeGreaterThanOrEqual(Math.max(0, p.chunks - 1) * delayMs);
        },
      ),
    );
  });
});

describe("job status rules", () => {
  it("completed and cancelled are final; failed can be resumed or cancelled", () => {
    expect(canResume("completed")).toBe(false);
    expect(canResume("cancelled")).toBe(false);
    expect(canResume("failed")).toBe(true);
    expect(canResume("running")).toBe(true);
    expect(canCancel("completed")).toBe(false);
    expect(canCancel("cancelled")).toBe(false);
    expect(canCancel("failed")).toBe(true);
    expect(canCancel("pending")).toBe(true);
  });

  it("a failing chunk backs off, growing and capped", () => {
    expect(chunkRetryDelayMs(1)).toBe(1000);
    expect(chunkRetryDelayMs(2)).toBe(2000);
    expect(chunkRetryDelayMs(50)).toBe(60_000);
  });
});
