import { describe, expect, it } from "vitest";
import { describeChart, sparkline } from "../../src/panel/chart.ts";
import { splitDetail } from "../../src/panel/format.ts";
import { eventIdList, idList, parseForm, utcField } from "../../src/panel/forms.ts";
import { escapeHtml, href, html } from "../../src/panel/html.ts";

describe("the html helper", () => {
  it("escapes every interpolation, in text and in attributes", () => {
    const evil = `"><script>alert('x')</script>&`;
    const out = html`<p title="${evil}">${evil}</p>`.value;
    expect(out).toBe(
      '<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>',
    );
    expect(escapeHtml("`")).toBe("&#96;");
  });

  it("keeps nested fragments, joins arrays, renders null, undefined and false as nothing", () => {
    const items = ["a<b", "c"];
    expect(html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.value).toBe(
      "<ul><li>a&lt;b</li><li>c</li></ul>",
    );
    expect(html`${null}${undefined}${false}${0}${"x"}`.value).toBe("0x");
  });

  it("builds query strings from the values that are set", () => {
    expect(href("/webhooks", { tenant: "a b&c", status: undefined, cursor: "" })).toBe(
      "/webhooks?tenant=a+b%26c",
    );
    expect(href("/webhooks")).toBe("/webhooks");
  });
});

describe("the chart", () => {
  it("describes what it shows in words, for its accessible name", () => {
    const points = [
      null,
      { pending: 3, dlq: 0, paused: false },
      { pending: 150, dlq: 1, paused: true },
      { pending: 0, dlq: 1, paused: false },
    ];
    expect(describeChart(points, 24 * 3600 * 1000)).toBe(
      "Over the last 24 h: pending peaked at 150 (last sample 0); DLQ peaked at 1 (last sample 1); paused in 1 of 4 intervals.",
    );
    expect(describeChart([null, null], 60_000)).toBe("No samples yet.");
    const svg = sparkline(points, { spanMs: 24 * 3600 * 1000 }).value;
    expect(svg).toMatch(
      /^<svg class="chart" role="img" aria-label="Over the last 24 h: pending peaked at 150/,
    );
    expect(svg).toContain('<rect class="chart-paused"');
    expect(svg).toContain('<polyline class="chart-pending"');
    // No inline styles (the CSP forbids them).
    expect(svg).not.toContain("style=");
  });
});

describe("form fields", () => {
  it("parses forms, reads datetime-local values as UTC, and splits ID lists", () => {
    expect(parseForm("a=1&b=x+y&a=2")).toEqual({ a: "1", b: "x y" });
    expect(utcField({ t: "2025-01-31T14:00" }, "t")).toBe("2025-01-31T14:00:00.000Z");
    expect(utcField({ t: "2025-01-31T14:00:00+02:00" }, "t")).toBe("2025-01-31T12:00:00.000Z");
    expect(() => utcField({ t: "tomorrow" }, "t", "Since")).toThrow(/Since must be a date and time in UTC/);
    expect(idList("c-1\nc-2\n\n c-3 ")).toEqual(["c-1", "c-2", "c-3"]);
    expect(idList("c-1, c-2,c-3")).toEqual(["c-1", "c-2", "c-3"]);
    expect(eventIdList("1, 2 3\n4", "IDs")).toEqual([1, 2, 3, 4]);
    expect(() => eventIdList("1, -2", "IDs")).toThrow('IDs: "-2" is not an event ID');
  });

  it("splits an error detail into the catalog message and the specifics", () => {
    expect(splitDetail("receiver rejected the request: HTTP 400")).toEqual({
      message: "receiver rejected the request",
      specifics: "HTTP 400",
    });
    expect(splitDetail("operator drop: corrupt")).toEqual({
      message: null,
      specifics: "operator drop: corrupt",
    });
    expect(splitDetail(null)).toEqual({ message: null, specifics: null });
  });
});
