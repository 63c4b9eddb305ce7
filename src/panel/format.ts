import { ERROR_CATALOG } from "../domain/error-kind.ts";
import { type Html, html } from "./html.ts";

const CATALOG_MESSAGES: readonly string[] = Object.values(ERROR_CATALOG).sort((a, b) => b.length - a.length);

/** Splits an `error_detail` into its catalog message and the specifics after it. */
export function splitDetail(detail: string | null): { message: string | null; specifics: string | null } {
  if (!detail) return { message: null, specifics: null };
  for (const m of CATALOG_MESSAGES) {
    if (detail === m) return { message: m, specifics: null };
    if (detail.startsWith(`${m}: `)) return { message: m, specifics: detail.slice(m.length + 2) };
  }
  return { message: null, specifics: detail };
}

function toDate(d: Date | string): Date {
  return d instanceof Date ? d : new Date(d);
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago" (or "in …" for a future time). */
export function relative(d: Date | string, now: Date): string {
  const ms = now.getTime() - toDate(d).getTime();
  const abs = Math.abs(ms);
  const unit =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return ms >= 0 ? `${unit} ago` : `in ${unit}`;
}

/** A `<time>` showing a relative time, the exact UTC time in its title. */
export function timeAgo(d: Date | string | null, now: Date): Html {
  if (d === null) return html`<span class="muted">—</span>`;
  const iso = toDate(d).toISOString();
  return html`<time datetime="${iso}" title="${iso}">${relative(d, now)}</time>`;
}

/** An exact UTC time, to the second. */
export function utc(d: Date | string | null): Html {
  if (d === null) return html`<span class="muted">—</span>`;
  const iso = toDate(d).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")} UTC</time>`;
}

/** A URL with its host emphasised (the part that tells endpoints apart at a glance). */
export function urlWithHost(url: string): Html {
  try {
    const u = new URL(url);
    const rest = `${u.pathname}${u.search}`;
    return html`<span class="url"><span class="muted">${u.protocol}//</span><strong>${u.host}</strong><span class="muted">${rest === "/" ? "" : rest}</span></span>`;
  } catch {
    return html`<span class="url">${url}</span>`;
  }
}

export function num(n: number): string {
  return n.toLocaleString("en-US");
}

/** Milliseconds as the largest whole unit that fits: "1 s", "15 min", "24 h". */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.max(1, Math.round(ms / 1000))} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

/** JSON, indented, for a `<pre>`. */
export function prettyJson(v: unknown): string {
  try {
    return JSON.stringify(v, null, 2) ?? "null";
  } catch {
    return String(v);
  }
}
