import type { ChartPoint } from "../service/samples.ts";
import { duration, num } from "./format.ts";
import { type Html, html, join } from "./html.ts";

export interface ChartOptions {
  width?: number;
  height?: number;
  /** Time covered by the points, for the description ("the last 24 h"). */
  spanMs: number;
}

/** Runs of consecutive points that have data (a chart line breaks where there is none). */
function runs(points: ReadonlyArray<ChartPoint | null>): Array<Array<{ i: number; p: ChartPoint }>> {
  const out: Array<Array<{ i: number; p: ChartPoint }>> = [];
  let cur: Array<{ i: number; p: ChartPoint }> = [];
  points.forEach((p, i) => {
    if (p === null) {
      if (cur.length > 0) out.push(cur);
      cur = [];
    } else cur.push({ i, p });
  });
  if (cur.length > 0) out.push(cur);
  return out;
}

/** What the chart shows, in words (its accessible name and tooltip). */
export function describeChart(points: ReadonlyArray<ChartPoint | null>, spanMs: number): string {
  const data = points.filter((p): p is ChartPoint => p !== null);
  const span = `the last ${duration(spanMs)}`;
  if (data.length === 0) return "No samples yet.";
  const last = data.at(-1)!;
  const maxPending = Math.max(...data.map((p) => p.pending));
  const maxDlq = Math.max(...data.map((p) => p.dlq));
  const paused = data.filter((p) => p.paused).length;
  const pausedText =
    paused === 0
      ? "never paused"
      : `paused in ${paused} of ${points.length} intervals${last.paused ? ", paused now" : ""}`;
  return (
    `Over ${span}: pending peaked at ${num(maxPending)} (last sample ${num(last.pending)}); ` +
    `DLQ peaked at ${num(maxDlq)} (last sample ${num(last.dlq)}); ${pausedText}.`
  );
}

/**
 * A small inline SVG of pending (line) and DLQ (dashed line) counts, with paused intervals shaded.
 * Both lines share one vertical scale, from 0 to the highest value shown.
 */
export function sparkline(points: ReadonlyArray<ChartPoint | null>, opts: ChartOptions): Html {
  const w = opts.width ?? 160;
  const h = opts.height ?? 36;
  const pad = 2;
  const n = points.length;
  const data = points.filter((p): p is ChartPoint => p !== null);
  const max = Math.max(1, ...data.map((p) => Math.max(p.pending, p.dlq)));
  const step = n > 1 ? (w - 2 * pad) / (n - 1) : 0;
  const x = (i: number) => (n > 1 ? pad + i * step : w / 2);
  const y = (v: number) => h - pad - (v / max) * (h - 2 * pad);
  const fmt = (v: number) => (Math.round(v * 10) / 10).toString();
  const label = describeChart(points, opts.spanMs);
  const bandWidth = n > 1 ? step : w - 2 * pad;
  const bands = points.map((p, i) =>
    p?.paused
      ? html`<rect class="chart-paused" x="${fmt(Math.max(0, x(i) - bandWidth / 2))}" y="0" width="${fmt(bandWidth)}" height="${h}"></rect>`
      : null,
  );
  const line = (cls: string, pick: (p: ChartPoint) => number) =>
    runs(points).map((run) =>
      run.length === 1
        ? html`<circle class="${cls}" cx="${fmt(x(run[0]!.i))}" cy="${fmt(y(pick(run[0]!.p)))}" r="1.8"></circle>`
        : html`<polyline class="${cls}" points="${run.map(({ i, p }) => `${fmt(x(i))},${fmt(y(pick(p)))}`).join(" ")}"></polyline>`,
    );
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" preserveAspectRatio="none"><title>${label}</title>${join(bands)}<line class="chart-base" x1="0" y1="${h - pad}" x2="${w}" y2="${h - pad}"></line>${line("chart-dlq", (p) => p.dlq)}${line("chart-pending", (p) => p.pending)}</svg>`;
}
